/*
 * pgpool.h - the connection pool of every request-reply endpoint
 * (vox-query's statements, vox-vault's credentials, billing.authorize).
 *
 * A fixed number of slots, each connection opened on first use and
 * reopened when it broke; a request borrows one for its work and gives it
 * back. A connection given back broken, inside a transaction or with a
 * command not read to its end (a pipeline short of its Sync) is closed
 * rather than handed to the next request. An outage is logged once, and its end once.
 */
#ifndef VOX_PGPOOL_H
#define VOX_PGPOOL_H

#include "core/common.h"

#include <libpq-fe.h>

typedef struct vox_pgpool vox_pgpool;

/* Called on each new connection before its first use (check the role,
 * set timeouts, prepare statements); a status other than VOX_OK closes it
 * and is what vox_pgpool_get returns. */
typedef vox_status (*vox_pgpool_open_fn)(PGconn *c, void *ctx, char *err,
					 size_t errlen);

/* A pool of nconns (at least 1) connections to dsn (copied); a request
 * waits up to wait_ms for a free one. open may be NULL. */
vox_pgpool *vox_pgpool_new(const char *dsn, size_t nconns, int64_t wait_ms,
			   vox_pgpool_open_fn open, void *ctx);

/* Close every connection; none may be borrowed. NULL is ignored. */
void vox_pgpool_free(vox_pgpool *p);

/*
 * Borrow a working connection into *out. VOX_E_TIMEOUT when none was
 * free within wait_ms; VOX_E_UNAVAILABLE when the database cannot be
 * reached; the open function's status when it refused the connection.
 * err (errlen bytes) says why; *out is NULL on failure.
 */
vox_status vox_pgpool_get(PGconn **out, vox_pgpool *p, char *err,
			  size_t errlen) VOX_MUST_CHECK;

/* Give c back; st is how its work went (VOX_E_UNAVAILABLE: the connection
 * was lost). NULL is ignored. */
void vox_pgpool_put(vox_pgpool *p, PGconn *c, vox_status st);

/* Give c back closed: its state cannot be trusted. */
void vox_pgpool_discard(vox_pgpool *p, PGconn *c);

/* Open one connection now, run the open function and close it: a startup
 * check. The status and err as vox_pgpool_get's. */
vox_status vox_pgpool_probe(vox_pgpool *p, char *err,
			    size_t errlen) VOX_MUST_CHECK;

#endif
