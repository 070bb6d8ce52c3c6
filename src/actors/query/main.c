/*
 * vox-query - read-only, tenant-scoped answers for dashboards and services:
 * query.wallet/transactions/calls/call/contact/hot_leads.<org>. Wiring
 * only: the actor shell (io/actor.c) owns the lifecycle, qdb.c the
 * database, endpoints.c the answers.
 */
#include "core/common.h"

#include "actors/query/query.h"
#include "io/actor.h"
#include "io/log.h"

#define QC(f) offsetof(vox_query_config, f)

static const vox_cfg_var query_vars[] = {
	{"VOX_RATE_PER_MINUTE", VOX_CFG_INT, "70", 1, 100000, NULL,
	 QC(rate_per_minute),
	 "price of a call minute, as vox-billing charges it (for"
	 " minutes_remaining)"},
	{"VOX_QUERY_CONNS", VOX_CFG_INT, "2", 1, 64, NULL, QC(conns),
	 "database connections this instance keeps"},
	{"VOX_QUERY_WORKERS", VOX_CFG_INT, "2", 1, 16, NULL, QC(workers),
	 "requests of one endpoint served at once (delivery threads)"},
	{"VOX_QUERY_TIMEOUT_MS", VOX_CFG_INT, "2000", 10, 60000, NULL,
	 QC(timeout_ms),
	 "statement timeout; a request waits as long for a free connection"},
	{"VOX_PG_READ_DSN", VOX_CFG_SECRET, "", 0, 0, NULL, QC(read_dsn),
	 "read from this server (a replica) instead of VOX_PG_DSN"},
};

static vox_query_ctx query;

static vox_status setup(vox_actor *a, void *ctx)
{
	vox_query_ctx *qc = ctx;
	char err[300] = "";
	const char *dsn = qc->cfg.read_dsn[0] ? qc->cfg.read_dsn
					      : vox_actor_cfg(a)->pg_dsn;
	natsConnection *nc = vox_actor_nats(a);
	int64_t max_payload = nc ? natsConnection_GetMaxPayload(nc) : 0;
	qc->max_reply = max_payload > 0 ? (size_t)max_payload : 1024 * 1024;
	vox_qdb_init(&qc->db, dsn, (size_t)qc->cfg.conns, qc->cfg.timeout_ms,
		     qc->cfg.timeout_ms, vox_query_stmts, vox_query_nstmts);

	/* A role that RLS does not bind must never serve: refuse to start.
	 * A database that is down may come back: start, answer 503. */
	vox_status st = vox_qdb_probe(&qc->db, err, sizeof(err));
	if (st == VOX_E_UNAVAILABLE) {
		vox_warn("msg=\"database unavailable; answering 503 until it is"
			 " back\" error=\"%s\"", err);
	} else if (st != VOX_OK) {
		vox_error("msg=\"refusing to serve\" error=\"%s\"", err);
		return st;
	}
	st = vox_service_set_workers(vox_actor_service(a), (int)qc->cfg.workers);
	static const struct {
		const char *name, *subject;
		vox_endpoint_fn fn;
	} eps[] = {
		{"wallet", "query.wallet.*", vox_query_wallet},
		{"transactions", "query.transactions.*", vox_query_transactions},
		{"calls", "query.calls.*", vox_query_calls},
		{"call", "query.call.*", vox_query_call},
		{"contact", "query.contact.*", vox_query_contact},
		{"hot_leads", "query.hot_leads.*", vox_query_hot_leads},
		{"holds", "query.holds.*", vox_query_holds},
	};
	for (size_t i = 0; i < VOX_NELEM(eps) && st == VOX_OK; i++)
		st = vox_service_add_endpoint(vox_actor_service(a), eps[i].name,
					      eps[i].subject, eps[i].fn, qc);
	if (st == VOX_OK)
		vox_info("msg=\"serving\" conns=%" PRId64 " workers=%" PRId64
			 " replica=%s", qc->cfg.conns, qc->cfg.workers,
			 qc->cfg.read_dsn[0] ? "yes" : "no");
	return st;
}

static void teardown(vox_actor *a, void *ctx)
{
	VOX_UNUSED(ctx);
	/* drain the endpoints first: no request may run past the pool */
	vox_service_stop(vox_actor_service(a));
}

int main(int argc, char **argv)
{
	static const vox_actor_def def = {
		.name = "vox-query",
		.description = "Read-only, tenant-scoped answers for dashboards and services",
		.vars = query_vars,
		.nvars = VOX_NELEM(query_vars),
		.cfg = &query.cfg,
		.setup = setup,
		.teardown = teardown,
		.ctx = &query,
	};
	int code = vox_actor_main(&def, argc, argv);
	if (query.db.pool)
		vox_qdb_release(&query.db);
	return code;
}
