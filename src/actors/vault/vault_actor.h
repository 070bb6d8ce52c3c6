/*
 * vault_actor.h - vox-vault's endpoints (credentials.put/get/list/delete)
 * shared by main.c (wiring) and store.c (SQL and the envelope); the key
 * rotation is io/vault_rotate.h.
 */
#ifndef VOX_ACTOR_VAULT_H
#define VOX_ACTOR_VAULT_H

#include "core/common.h"

#include <pthread.h>

#include <libpq-fe.h>

#include "core/vault.h"
#include "io/pgpool.h"
#include "io/service.h"

typedef struct vox_vault_config {
	const char *keys;     /* VOX_VAULT_KEYS: the ring as text (secret) */
	const char *key_file; /* VOX_VAULT_KEY_FILE: a path to the ring */
} vox_vault_config;

/* The endpoints: as many requests as may run at once. */
enum { VOX_VAULT_EP_PUT, VOX_VAULT_EP_GET, VOX_VAULT_EP_LIST,
       VOX_VAULT_EP_DELETE, VOX_VAULT_EP_COUNT };

/* How long a request waits for a connection before it is answered 503. */
#define VAULT_WAIT_MS 5000

typedef struct vox_vault_ctx {
	vox_vault_config cfg;
	vox_pgpool *pool; /* every endpoint's connections (setup) */
	/* The key ring: parsed in setup, replaced by a SIGHUP reload, freed
	 * in teardown. Endpoints hold ring_lock for reading while they seal
	 * or open; a reload swaps the pointer under it for writing. */
	pthread_rwlock_t ring_lock;
	vox_keyring *ring;
	bool ring_from_env; /* VOX_VAULT_KEYS: nothing to reload */
} vox_vault_ctx;

/* Embedded-struct lifecycle of the pool and the ring's lock (not the
 * ring). */
void vox_vault_ctx_init(vox_vault_ctx *vc);
void vox_vault_ctx_release(vox_vault_ctx *vc);

/* The endpoints; ctx is the vox_vault_ctx. Each answers exactly once,
 * audits what it came to (put, get, delete) and wipes the request body. */
void vox_vault_put(vox_request *req, void *ctx);
void vox_vault_get(vox_request *req, void *ctx);
void vox_vault_list(vox_request *req, void *ctx);
void vox_vault_delete(vox_request *req, void *ctx);

#endif
