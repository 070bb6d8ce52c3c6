/*
 * vault_actor.h - vox-vault's endpoints (credentials.put/get/list/delete)
 * and the key rotation, shared by main.c (wiring), store.c (SQL and the
 * envelope) and voxctl / the tests (vox_vault_rotate).
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

/*
 * Re-encrypt every org_credentials row whose key_version is not the
 * ring's active version: batches of `batch` rows (SELECT ... FOR UPDATE
 * SKIP LOCKED), each opened with its old key and sealed with the active
 * one in its own transaction, until none is left. Readers keep working:
 * a row is always whole under one key the ring holds. c is borrowed and
 * must not be inside a transaction. *rotated gets the number of rows
 * re-encrypted (also on failure, for what was committed). A row that
 * cannot be opened is skipped and left as it is; the call then returns
 * VOX_E_CRYPTO with err naming the first such row (its id, never a
 * secret). VOX_E_UNAVAILABLE / VOX_E_INTERNAL on database errors.
 */
vox_status vox_vault_rotate(PGconn *c, const vox_keyring *kr, int batch,
			    int *rotated, char *err,
			    size_t errlen) VOX_MUST_CHECK;

#endif
