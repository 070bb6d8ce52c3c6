/*
 * Integration: the endpoints' connection pool (src/io/pgpool.c) against a
 * real PostgreSQL. A connection given back healthy is lent again (the
 * same backend); one given back inside a transaction, discarded or lost is
 * never lent again; a request waits for a free slot and times out when
 * none comes; an unreachable database and a refusing open function give
 * their own statuses; several threads share a small pool without two ever
 * holding the same connection.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>

#include "harness.h"
#include "io/pgpool.h"

static int backend(PGconn *c)
{
	return PQbackendPID(c);
}

static int opened; /* times the open function ran */

static vox_status count_open(PGconn *c, void *ctx, char *err, size_t errlen)
{
	VOX_UNUSED(c);
	VOX_UNUSED(err);
	VOX_UNUSED(errlen);
	VOX_UNUSED(ctx);
	__atomic_add_fetch(&opened, 1, __ATOMIC_SEQ_CST);
	return VOX_OK;
}

static vox_status refuse_open(PGconn *c, void *ctx, char *err, size_t errlen)
{
	VOX_UNUSED(c);
	VOX_UNUSED(ctx);
	snprintf(err, errlen, "not this role");
	return VOX_E_FORBIDDEN;
}

static void test_reuse_and_discard(void **state)
{
	(void)state;
	char err[256];
	PGconn *c = NULL;
	opened = 0;
	vox_pgpool *p = vox_pgpool_new(th_env("VOX_PG_DSN"), 1, 1000, count_open, NULL);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	int first = backend(c);
	vox_pgpool_put(p, c, VOX_OK);
	/* healthy and idle: the same connection, not opened again */
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	assert_int_equal(backend(c), first);
	assert_int_equal(opened, 1);
	/* given back inside a transaction: closed, a fresh one next */
	th_pg_ok(c, "BEGIN");
	vox_pgpool_put(p, c, VOX_OK);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	int second = backend(c);
	assert_int_not_equal(second, first);
	assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
	assert_int_equal(opened, 2);
	/* discarded: closed */
	vox_pgpool_discard(p, c);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	int third = backend(c);
	assert_int_not_equal(third, second);
	/* its work lost the connection: closed even if it looks fine */
	vox_pgpool_put(p, c, VOX_E_UNAVAILABLE);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	assert_int_not_equal(backend(c), third);
	/* a refusal of the input (not the connection's fault) keeps it */
	int fourth = backend(c);
	vox_pgpool_put(p, c, VOX_E_INVALID);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	assert_int_equal(backend(c), fourth);
	/* killed under it: the pool notices and opens another */
	PGconn *admin = th_pg_connect(th_env("VOX_PG_DSN"));
	vox_pgpool_put(p, c, VOX_OK);
	th_pg_okf(admin, "SELECT pg_terminate_backend(%d)", fourth);
	PQclear(PQexec(c, "SELECT 1")); /* libpq learns the socket closed */
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	assert_int_not_equal(backend(c), fourth);
	assert_int_equal(th_pg_int(c, "SELECT 41 + 1"), 42);
	vox_pgpool_put(p, c, VOX_OK);
	PQfinish(admin);
	vox_pgpool_free(p);
}

static vox_status pipeline_open(PGconn *c, void *ctx, char *err, size_t errlen)
{
	VOX_UNUSED(ctx);
	if (!PQenterPipelineMode(c)) {
		snprintf(err, errlen, "no pipeline mode");
		return VOX_E_INTERNAL;
	}
	return VOX_OK;
}

/* vox-query's connections are in pipeline mode: given back after a
 * pipeline read to its Sync, one is kept; given back short of it, it is
 * closed. */
static void test_pipeline_connections_are_kept(void **state)
{
	(void)state;
	char err[256];
	PGconn *c = NULL;
	vox_pgpool *p = vox_pgpool_new(th_env("VOX_PG_DSN"), 1, 1000, pipeline_open, NULL);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	int first = backend(c);
	assert_int_equal(PQsendQueryParams(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0), 1);
	assert_int_equal(PQpipelineSync(c), 1);
	bool synced = false;
	for (int i = 0; i < 8 && !synced; i++) {
		PGresult *r = PQgetResult(c);
		synced = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
	}
	assert_true(synced);
	vox_pgpool_put(p, c, VOX_OK);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	assert_int_equal(backend(c), first);
	/* sent, synced, not read */
	assert_int_equal(PQsendQueryParams(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0), 1);
	assert_int_equal(PQpipelineSync(c), 1);
	vox_pgpool_put(p, c, VOX_OK);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_OK);
	assert_int_not_equal(backend(c), first);
	vox_pgpool_put(p, c, VOX_OK);
	vox_pgpool_free(p);
}

static void test_busy_times_out(void **state)
{
	(void)state;
	char err[256];
	PGconn *a = NULL, *b = NULL;
	vox_pgpool *p = vox_pgpool_new(th_env("VOX_PG_DSN"), 1, 200, NULL, NULL);
	assert_int_equal(vox_pgpool_get(&a, p, err, sizeof(err)), VOX_OK);
	assert_int_equal(vox_pgpool_get(&b, p, err, sizeof(err)), VOX_E_TIMEOUT);
	assert_null(b);
	assert_non_null(strstr(err, "busy"));
	vox_pgpool_put(p, a, VOX_OK);
	assert_int_equal(vox_pgpool_get(&b, p, err, sizeof(err)), VOX_OK);
	assert_ptr_equal(a, b);
	vox_pgpool_put(p, b, VOX_OK);
	vox_pgpool_free(p);
}

static void test_unreachable_and_refused(void **state)
{
	(void)state;
	char err[256], dsn[128];
	PGconn *c = NULL;
	snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d dbname=vox connect_timeout=2",
		 th_free_port());
	vox_pgpool *p = vox_pgpool_new(dsn, 2, 200, NULL, NULL);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_E_UNAVAILABLE);
	assert_null(c);
	/* the slot went back: a second try fails the same way, not busy */
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_E_UNAVAILABLE);
	assert_int_equal(vox_pgpool_probe(p, err, sizeof(err)), VOX_E_UNAVAILABLE);
	vox_pgpool_free(p);

	p = vox_pgpool_new(th_env("VOX_PG_DSN"), 1, 200, refuse_open, NULL);
	assert_int_equal(vox_pgpool_get(&c, p, err, sizeof(err)), VOX_E_FORBIDDEN);
	assert_string_equal(err, "not this role");
	assert_int_equal(vox_pgpool_probe(p, err, sizeof(err)), VOX_E_FORBIDDEN);
	vox_pgpool_free(p);
}

/* Four threads, two connections, 50 rounds each: a borrowed connection
 * is never lent to another thread at the same time (each borrower counts
 * itself in while it holds one), and every round gets one. */
typedef struct share {
	vox_pgpool *p;
	pthread_mutex_t lock;
	PGconn *seen[8];
	int holders[8];
	int failures, overlaps;
} share;

/* Count the caller in (+1) or out (-1) of c; the holders before. */
static int hold(share *sh, PGconn *c, int d)
{
	pthread_mutex_lock(&sh->lock);
	size_t i = 0;
	while (i < VOX_NELEM(sh->seen) && sh->seen[i] && sh->seen[i] != c)
		i++;
	int before = -1;
	if (i < VOX_NELEM(sh->seen)) {
		sh->seen[i] = c;
		before = sh->holders[i];
		sh->holders[i] += d;
	}
	pthread_mutex_unlock(&sh->lock);
	return before;
}

static void *borrower(void *arg)
{
	share *sh = arg;
	char err[256];
	for (int i = 0; i < 50; i++) {
		PGconn *c = NULL;
		if (vox_pgpool_get(&c, sh->p, err, sizeof(err)) != VOX_OK) {
			__atomic_add_fetch(&sh->failures, 1, __ATOMIC_SEQ_CST);
			continue;
		}
		if (hold(sh, c, 1) != 0)
			__atomic_add_fetch(&sh->overlaps, 1, __ATOMIC_SEQ_CST);
		PGresult *r = PQexec(c, "SELECT pg_sleep(0.002)");
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			__atomic_add_fetch(&sh->failures, 1, __ATOMIC_SEQ_CST);
		PQclear(r);
		hold(sh, c, -1);
		vox_pgpool_put(sh->p, c, VOX_OK);
	}
	return NULL;
}

static void test_threads_share_a_small_pool(void **state)
{
	(void)state;
	share sh;
	memset(&sh, 0, sizeof(sh));
	sh.p = vox_pgpool_new(th_env("VOX_PG_DSN"), 2, 5000, NULL, NULL);
	pthread_mutex_init(&sh.lock, NULL);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, borrower, &sh), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(sh.failures, 0);
	assert_int_equal(sh.overlaps, 0);
	/* two connections served everyone */
	assert_non_null(sh.seen[0]);
	assert_null(sh.seen[2]);
	pthread_mutex_destroy(&sh.lock);
	vox_pgpool_free(sh.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reuse_and_discard),
		cmocka_unit_test(test_pipeline_connections_are_kept),
		cmocka_unit_test(test_busy_times_out),
		cmocka_unit_test(test_unreachable_and_refused),
		cmocka_unit_test(test_threads_share_a_small_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
