/*
 * pgpool.c - the endpoints' connection pool (pgpool.h).
 */
#include "io/pgpool.h"

#include "io/log.h"
#include "io/pg.h"

#include <pthread.h>
#include <time.h>

typedef struct slot {
	PGconn *pg; /* NULL until opened, and after it broke */
	bool busy;
} slot;

struct vox_pgpool {
	pthread_mutex_t lock; /* guards slots[].busy and down */
	pthread_cond_t freed; /* a slot was given back */
	char *dsn;
	slot *slots;
	size_t nslots;
	int64_t wait_ms;
	vox_pgpool_open_fn open;
	void *ctx;
	bool down; /* the outage is logged once */
};

vox_pgpool *vox_pgpool_new(const char *dsn, size_t nconns, int64_t wait_ms,
			   vox_pgpool_open_fn open, void *ctx)
{
	vox_pgpool *p = vox_calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->freed, &ca);
	pthread_condattr_destroy(&ca);
	p->dsn = vox_strndup(dsn, strlen(dsn));
	p->nslots = nconns ? nconns : 1;
	p->slots = vox_calloc(p->nslots, sizeof(*p->slots));
	p->wait_ms = wait_ms > 0 ? wait_ms : 1;
	p->open = open;
	p->ctx = ctx;
	return p;
}

void vox_pgpool_free(vox_pgpool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nslots; i++)
		PQfinish(p->slots[i].pg);
	free(p->slots);
	free(p->dsn);
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Note an outage (logged once) or its end. */
static void set_down(vox_pgpool *p, bool down, const char *err)
{
	pthread_mutex_lock(&p->lock);
	bool was = p->down;
	p->down = down;
	pthread_mutex_unlock(&p->lock);
	if (down && !was)
		vox_warn("msg=\"database unavailable\" error=\"%s\"", err);
	else if (!down && was)
		vox_info("msg=\"database available again\"");
}

/* Connect and run the open function; *out only on VOX_OK. */
static vox_status open_conn(vox_pgpool *p, PGconn **out, char *err,
			    size_t errlen)
{
	PGconn *c = NULL;
	vox_status st = vox_pg_connect(&c, p->dsn, err, errlen);
	if (st == VOX_OK && p->open)
		st = p->open(c, p->ctx, err, errlen);
	if (st != VOX_OK) {
		PQfinish(c);
		return st;
	}
	*out = c;
	return VOX_OK;
}

/* A free slot, waiting up to wait_ms; NULL when none came. An open
 * connection is taken first: opening one costs round trips. */
static slot *acquire(vox_pgpool *p)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += p->wait_ms / 1000;
	until.tv_nsec += (p->wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	for (;;) {
		slot *pick = NULL;
		for (size_t i = 0; i < p->nslots; i++) {
			slot *k = &p->slots[i];
			if (!k->busy && (!pick || (k->pg && !pick->pg)))
				pick = k;
		}
		if (pick) {
			pick->busy = true;
			pthread_mutex_unlock(&p->lock);
			return pick;
		}
		if (pthread_cond_timedwait(&p->freed, &p->lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void release(vox_pgpool *p, slot *k)
{
	pthread_mutex_lock(&p->lock);
	k->busy = false;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

/* The slot lending c; a connection not lent by p is a bug. The slots'
 * pg pointers change under the lock only. */
static slot *slot_of(vox_pgpool *p, PGconn *c)
{
	slot *k = NULL;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nslots && !k; i++)
		if (p->slots[i].pg == c && p->slots[i].busy)
			k = &p->slots[i];
	pthread_mutex_unlock(&p->lock);
	if (!k)
		abort();
	return k;
}

static void set_pg(vox_pgpool *p, slot *k, PGconn *c)
{
	pthread_mutex_lock(&p->lock);
	k->pg = c;
	pthread_mutex_unlock(&p->lock);
}

vox_status vox_pgpool_get(PGconn **out, vox_pgpool *p, char *err,
			  size_t errlen)
{
	*out = NULL;
	slot *k = acquire(p);
	if (!k) {
		snprintf(err, errlen, "every database connection is busy");
		return VOX_E_TIMEOUT;
	}
	if (!k->pg || PQstatus(k->pg) != CONNECTION_OK) {
		PGconn *c = NULL;
		PQfinish(k->pg);
		set_pg(p, k, NULL);
		vox_status st = open_conn(p, &c, err, errlen);
		set_pg(p, k, c);
		if (st != VOX_OK) {
			if (st == VOX_E_UNAVAILABLE)
				set_down(p, true, err);
			else
				vox_error("msg=\"database connection refused\""
					  " error=\"%s\"", err);
			release(p, k);
			return st;
		}
		set_down(p, false, NULL);
	}
	*out = k->pg;
	return VOX_OK;
}

void vox_pgpool_put(vox_pgpool *p, PGconn *c, vox_status st)
{
	if (!c)
		return;
	slot *k = slot_of(p, c);
	bool lost = st == VOX_E_UNAVAILABLE || PQstatus(c) != CONNECTION_OK;
	/* inside a transaction, or a command (a pipeline) not read to its
	 * end: the next borrower would inherit it */
	if (lost || PQtransactionStatus(c) != PQTRANS_IDLE) {
		set_pg(p, k, NULL);
		PQfinish(c);
	}
	set_down(p, lost, "connection lost");
	release(p, k);
}

void vox_pgpool_discard(vox_pgpool *p, PGconn *c)
{
	if (!c)
		return;
	slot *k = slot_of(p, c);
	set_pg(p, k, NULL);
	PQfinish(c);
	release(p, k);
}

vox_status vox_pgpool_probe(vox_pgpool *p, char *err, size_t errlen)
{
	PGconn *c = NULL;
	vox_status st = open_conn(p, &c, err, errlen);
	PQfinish(c);
	return st;
}
