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
#include "io/service.h"

typedef struct vox_vault_config {
	const char *keys;     /* VOX_VAULT_KEYS: the ring as text (secret) */
	const char *key_file; /* VOX_VAULT_KEY_FILE: a path to the ring */
} vox_vault_config;

/* One endpoint's database connection: libnats runs endpoints on several
 * delivery threads, so each endpoint serialises on its own connection. */
typedef struct vox_vault_conn {
	pthread_mutex_t lock; /* guards pg and down */
	PGconn *pg;           /* opened on demand, reopened when broken */
	bool down;            /* the outage is logged once */
} vox_vault_conn;

enum { VOX_VAULT_EP_PUT, VOX_VAULT_EP_GET, VOX_VAULT_EP_LIST,
       VOX_VAULT_EP_DELETE, VOX_VAULT_EP_COUNT };

typedef struct vox_vault_ctx {
	vox_vault_config cfg;
	const char *dsn; /* borrowed from the actor's config */
	/* The key ring: parsed in setup, replaced by a SIGHUP reload, freed
	 * in teardown. Endpoints hold ring_lock for reading while they seal
	 * or open; a reload swaps the pointer under it for writing. */
	pthread_rwlock_t ring_lock;
	vox_keyring *ring;
	bool ring_from_env; /* VOX_VAULT_KEYS: nothing to reload */
	vox_vault_conn conns[VOX_VAULT_EP_COUNT];
} vox_vault_ctx;

/* Embedded-struct lifecycle of the connections and the ring's lock (not
 * the ring). */
void vox_vault_ctx_init(vox_vault_ctx *vc);
void vox_vault_ctx_release(vox_vault_ctx *vc);

/* The endpoints; ctx is the vox_vault_ctx. Each answers exactly once,
 * audits what it came to (put, get, delete) and wipes the request body. */
void vox_vault_put(vox_request *req, void *ctx);
void vox_vault_get(vox_request *req, void *ctx);
void vox_vault_list(vox_request *req, void *ctx);
void vox_vault_delete(vox_request *req, void *ctx);

#endif
