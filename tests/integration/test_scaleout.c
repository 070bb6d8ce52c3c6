/*
 * Integration: scale-out on a NATS cluster. Starts three nats-server nodes
 * with deploy/nats/cluster.conf (and its accounts.conf) on free loopback
 * ports, each with its own JetStream store under VOX_TEST_TMP; the
 * operator's `voxctl streams apply` makes the streams with three replicas
 * (VOX_STREAM_REPLICAS=3), which the actors (with the same setting) check
 * before they create their consumers; they connect with the URLs of all
 * three nodes and their own NATS users. Two instances each of vox-calls, vox-billing and
 * vox-leads consume a workload of calls, payments and leads in which one
 * event in seven is published twice (a second JetStream message). The
 * workload goes out in three parts:
 *   1. with everything up, all at once (async), then one NATS node and one
 *      instance of each actor are killed (SIGKILL) while batches (of 32)
 *      are being applied;
 *   2. while they are down (part 1 is published again too, acked one by
 *      one: JetStream must drop the copies);
 *   3. after the node and the instances were started again;
 * then the refunds, once their top-ups are in. Checked afterwards: every
 * event stored once in the R3 stream, nothing lost (every call, charge,
 * top-up, refund, lead), nothing applied twice (balances, ledger rows,
 * calls rows, alerts exactly once in the outbox and in the ALERTS stream),
 * the billing invariants, no dead letters, every consumer drained, and
 * every actor stopping with exit 0 on SIGTERM.
 * A second test starts deploy/nats/partition.conf (the optional per-org
 * partition mapping) and checks that every event of an org lands in one
 * partition.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "invariants.h"
#include "io/natsconn.h"
#include "vox/client.h"

#define NODES 3
#define KILLED_NODE 1

#define ORGS_A 8   /* calls only: cross the low-balance threshold once */
#define ORGS_B 8   /* calls, top-ups and refunds: stay well above it */
#define ORGS (ORGS_A + ORGS_B)
#define CALLS_PER_ORG 40
#define TOPUPS_PER_B 3
#define LEADS_PER_ORG 4
#define DUP_EVERY 7

/* A: 40 calls of 50 s at 70/min cost 59 each: 3000 - 2360 = 640, below
 * the threshold of 1000 from the 34th call on, never near the debt limit.
 * B: 40 calls of 60 s (70 each), three top-ups of 500, one refund of 200:
 * 100000 - 2800 + 1500 - 200 = 98500. */
#define A_OPENING 3000
#define A_DURATION 50
#define A_FINAL 640
#define B_OPENING 100000
#define B_DURATION 60
#define TOPUP 500
#define REFUND 200
#define B_FINAL 98500
#define HOT_PER_ORG 2 /* scores 85 and 75 of 85, 40, 75, 20 */

#define WAIT_MS 60000

static const char *users[] = {"admin", "calls", "billing", "leads", "vault",
			      "query", "telephony", "payments", "scorer",
			      "alerts", "internal"};

typedef struct node {
	int port, cport;
	pid_t pid;
	char dir[512];
} node;

enum { A_CALLS, A_BILLING, A_LEADS, NACTORS };
static const char *actor_bin[NACTORS] = {"vox-calls", "vox-billing", "vox-leads"};
static const char *actor_user[NACTORS] = {"calls", "billing", "leads"};

typedef struct fixture {
	node nodes[NODES];
	char dir[400];
	char urls[512];       /* nats://h:p,... */
	char dsn[512];
	pid_t actors[NACTORS][2];
	char logs[NACTORS][2][600];
	int starts[NACTORS][2];
	natsConnection *nc;
	jsCtx *js;
	PGconn *db;
} fixture;

/* ---- the cluster ------------------------------------------------------- */

static void pick_ports(int *ports, int n)
{
	/* all bound at once, so the ports differ; closed right before use */
	int fds[2 * NODES];
	assert_true(n <= 2 * NODES);
	for (int i = 0; i < n; i++) {
		struct sockaddr_in a;
		socklen_t len = sizeof(a);
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
		assert_int_equal(getsockname(fds[i], (struct sockaddr *)&a, &len), 0);
		ports[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
}


/* Set in setup, so that the servers' children agree with the test. */
static long pw_tag;

static void password(char *out, size_t len, const char *user)
{
	snprintf(out, len, "pw-%s-%ld", user, pw_tag);
}

static void upper(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

/* The nats-server of node i, configured as cluster.conf documents: by
 * environment variables only. */
static void node_spawn(fixture *f, int i)
{
	node *n = &f->nodes[i];
	char conf[1024], log[600], pidf[600];
	snprintf(conf, sizeof(conf), "%s/deploy/nats/cluster.conf", VOX_SOURCE_DIR);
	snprintf(log, sizeof(log), "%s/nats.log", n->dir);
	snprintf(pidf, sizeof(pidf), "%s/nats.pid", n->dir);
	pid_t parent = getpid();
	n->pid = fork();
	assert_true(n->pid >= 0);
	if (n->pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(125);
		char v[1024], k[64], rpw[64];
		password(rpw, sizeof(rpw), "route");
		snprintf(v, sizeof(v), "vox-n%d", i + 1);
		setenv("VOX_NATS_NODE", v, 1);
		setenv("VOX_NATS_HOST", "127.0.0.1", 1);
		setenv("VOX_NATS_CLUSTER_HOST", "127.0.0.1", 1);
		snprintf(v, sizeof(v), "%d", n->port);
		setenv("VOX_NATS_PORT", v, 1);
		snprintf(v, sizeof(v), "%d", n->cport);
		setenv("VOX_NATS_CLUSTER_PORT", v, 1);
		setenv("VOX_NATS_ROUTE_PASSWORD", rpw, 1);
		size_t off = (size_t)snprintf(v, sizeof(v), "[");
		for (int j = 0; j < NODES; j++)
			if (j != i)
				off += (size_t)snprintf(v + off, sizeof(v) - off,
					"%snats-route://route:%s@127.0.0.1:%d",
					off > 1 ? ", " : "", rpw, f->nodes[j].cport);
		snprintf(v + off, sizeof(v) - off, "]");
		setenv("VOX_NATS_ROUTES", v, 1);
		snprintf(v, sizeof(v), "%s/store", n->dir);
		setenv("VOX_NATS_STORE", v, 1);
		for (size_t u = 0; u < VOX_NELEM(users); u++) {
			snprintf(k, sizeof(k), "VOX_NATS_%s_PASSWORD", users[u]);
			upper(k);
			password(v, sizeof(v), users[u]);
			setenv(k, v, 1);
		}
		execlp("nats-server", "nats-server", "-c", conf, "-l", log, "-P",
		       pidf, (char *)NULL);
		_exit(127);
	}
	for (int t = 0; t < 100 && !th_port_open(n->port); t++)
		th_sleep_ms(100);
	if (!th_port_open(n->port))
		fail_msg("nats node %d did not start (see %s)", i + 1, log);
}

static void node_kill(fixture *f, int i)
{
	if (f->nodes[i].pid > 0)
		th_stop(f->nodes[i].pid, SIGKILL, 10000);
	f->nodes[i].pid = 0;
}

/* The test's own connection, as the operators' user, to any node. */
static void admin_connect(fixture *f)
{
	natsOptions *no = NULL;
	char pw[64];
	password(pw, sizeof(pw), "admin");
	assert_int_equal(natsOptions_Create(&no), NATS_OK);
	assert_int_equal(vox_nats_set_urls(no, f->urls), NATS_OK);
	assert_int_equal(natsOptions_SetUserInfo(no, "admin", pw), NATS_OK);
	natsOptions_SetMaxReconnect(no, -1);
	natsOptions_SetReconnectWait(no, 100);
	assert_int_equal(natsConnection_Connect(&f->nc, no), NATS_OK);
	natsOptions_Destroy(no);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 5000;
	assert_int_equal(natsConnection_JetStream(&f->js, f->nc, &jo), NATS_OK);
}

/* JetStream answers once the cluster has a meta leader. */
static void wait_jetstream(fixture *f)
{
	natsStatus s = NATS_ERR;
	for (int t = 0; t < 300 && s != NATS_OK; t++) {
		jsAccountInfo *ai = NULL;
		s = js_GetAccountInfo(&ai, f->js, NULL, NULL);
		jsAccountInfo_Destroy(ai);
		if (s != NATS_OK)
			th_sleep_ms(100);
	}
	assert_int_equal(s, NATS_OK);
}

/* The operator makes the streams, R3 (`voxctl streams apply` as admin,
 * with the actors' VOX_STREAM_REPLICAS); the actors only check them. */
static void streams_apply(fixture *f)
{
	char url[600], user[] = "VOX_NATS_USER=admin", pw[128], p[64];
	char rep[] = "VOX_STREAM_REPLICAS=3";
	snprintf(url, sizeof(url), "VOX_NATS_URL=%s", f->urls);
	password(p, sizeof(p), "admin");
	snprintf(pw, sizeof(pw), "VOX_NATS_PASSWORD=%s", p);
	char *env[] = {url, user, pw, rep, NULL};
	const char *argv[] = {"voxctl", "streams", "apply", "--wait", "30", NULL};
	th_run_result r;
	th_run("voxctl", argv, env, NULL, 60000, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(th_count_str(r.out.data, "\"action\":\"created\""), 3);
	th_run_release(&r);
}

/* ---- the actors ----------------------------------------------------------- */

static void actor_start(fixture *f, int a, int k)
{
	char url[600], dsn[600], user[64], pw[128];
	char e_fetch[] = "VOX_FETCH_WAIT_MS=200";
	char e_age[] = "VOX_OUTBOX_AGE_MS=0";
	char e_ack[] = "VOX_ACK_WAIT_S=4";
	char e_rep[] = "VOX_STREAM_REPLICAS=3";
	char e_retry[] = "VOX_RETRY_MAX_MS=1000";
	char e_batch[] = "VOX_BATCH=32";
	char p[64];
	snprintf(url, sizeof(url), "VOX_NATS_URL=%s", f->urls);
	snprintf(dsn, sizeof(dsn), "VOX_PG_DSN=%s", f->dsn);
	snprintf(user, sizeof(user), "VOX_NATS_USER=%s", actor_user[a]);
	password(p, sizeof(p), actor_user[a]);
	snprintf(pw, sizeof(pw), "VOX_NATS_PASSWORD=%s", p);
	char *env[] = {url, dsn, user, pw, e_fetch, e_age, e_ack, e_rep, e_retry, e_batch, NULL};
	snprintf(f->logs[a][k], sizeof(f->logs[a][k]), "%s/%s-%d.log", f->dir,
		 actor_bin[a], k);
	int before = th_count_in_log(f->logs[a][k], "msg=\"started\"");
	f->actors[a][k] = th_spawn(actor_bin[a], env, f->logs[a][k]);
	f->starts[a][k]++;
	for (int t = 0; t < 600; t++) {
		if (th_count_in_log(f->logs[a][k], "msg=\"started\"") > before)
			return;
		if (!th_alive(f->actors[a][k])) {
			f->actors[a][k] = 0;
			fail_msg("%s exited at start (see %s)", actor_bin[a], f->logs[a][k]);
		}
		th_sleep_ms(100);
	}
	fail_msg("%s did not start (see %s)", actor_bin[a], f->logs[a][k]);
}

/* ---- fixture ----------------------------------------------------------------- */

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	*state = f;
	pw_tag = (long)getpid();
	snprintf(f->dir, sizeof(f->dir), "%s/scaleout-%ld", th_env("VOX_TEST_TMP"),
		 (long)getpid());
	mkdir(f->dir, 0755);
	int ports[2 * NODES];
	pick_ports(ports, 2 * NODES);
	size_t off = 0;
	for (int i = 0; i < NODES; i++) {
		node *n = &f->nodes[i];
		n->port = ports[2 * i];
		n->cport = ports[2 * i + 1];
		snprintf(n->dir, sizeof(n->dir), "%s/n%d", f->dir, i + 1);
		mkdir(n->dir, 0755);
		off += (size_t)snprintf(f->urls + off, sizeof(f->urls) - off,
			"%snats://127.0.0.1:%d", i ? "," : "", n->port);
	}
	for (int i = 0; i < NODES; i++)
		node_spawn(f, i);
	admin_connect(f);
	wait_jetstream(f);
	streams_apply(f);
	th_pg_migrated_db("scaleout", f->dsn, sizeof(f->dsn));
	f->db = th_pg_connect(f->dsn);
	th_pg_ok(f->db, "CREATE TABLE it_opening (org_id uuid PRIMARY KEY, opening bigint NOT NULL)");
	return 0;
}

/* Stops every process, also after a failed assertion. */
static int teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	for (int a = 0; a < NACTORS; a++)
		for (int k = 0; k < 2; k++)
			if (f->actors[a][k] > 0)
				th_stop(f->actors[a][k], SIGKILL, 5000);
	jsCtx_Destroy(f->js);
	natsConnection_Destroy(f->nc);
	for (int i = 0; i < NODES; i++)
		if (f->nodes[i].pid > 0)
			th_stop(f->nodes[i].pid, SIGTERM, 10000);
	PQfinish(f->db);
	free(f);
	return 0;
}

/* ---- the workload ------------------------------------------------------------ */

typedef enum { W_STARTED, W_ENDED, W_TOPUP, W_LEAD } wkind;

typedef struct witem {
	wkind kind;
	int org;
	int n;
	bool dup; /* published a second time as another JetStream message */
} witem;

static void org_id(char out[37], int org)
{
	snprintf(out, 37, "5ca1e000-0000-4000-8000-%012d", org);
}

static void call_id(char out[37], int org, int n)
{
	snprintf(out, 37, "ca11%04d-0000-4000-8000-%012d", org, n);
}

#define S(x) ((vox_str){(x), strlen(x)})

/* Publish ev with Nats-Msg-Id msgid, retrying through a lost node (the
 * same id: JetStream drops a repeat of one that was stored after all);
 * async: without waiting for the ack (see publish_async_done). */
static void publish(fixture *f, const vox_event *ev, const char *msgid, bool async)
{
	natsMsg *m = NULL;
	vox_error err;
	vox_status st = vox_event_to_msg(&m, ev, &err);
	if (st != VOX_OK)
		fprintf(stderr, "event refused: %s\n", err.message);
	assert_int_equal(st, VOX_OK);
	assert_int_equal(natsMsgHeader_Set(m, "Nats-Msg-Id", msgid), NATS_OK);
	if (async) {
		assert_int_equal(js_PublishMsgAsync(f->js, &m, NULL), NATS_OK);
		natsMsg_Destroy(m); /* NULL unless the publish failed */
		return;
	}
	natsStatus s = NATS_ERR;
	for (int t = 0; t < 100 && s != NATS_OK; t++) {
		jsPubAck *pa = NULL;
		jsErrCode jerr = 0;
		s = js_PublishMsg(&pa, f->js, m, NULL, &jerr);
		jsPubAck_Destroy(pa);
		if (s != NATS_OK)
			th_sleep_ms(200);
	}
	if (s != NATS_OK)
		fprintf(stderr, "publish %s: %s\n", msgid, natsStatus_GetText(s));
	assert_int_equal(s, NATS_OK);
	natsMsg_Destroy(m);
}

static void publish_item(fixture *f, const witem *w, bool async)
{
	char org[37], call[37], eid[96], phone[32], pi[64], mid[128];
	vox_event ev;
	memset(&ev, 0, sizeof(ev));
	org_id(org, w->org);
	bool a = w->org < ORGS_A;
	switch (w->kind) {
	case W_STARTED: {
		call_id(call, w->org, w->n);
		snprintf(eid, sizeof(eid), "cs-%d-%d", w->org, w->n);
		snprintf(phone, sizeof(phone), "+4477001%02d%03d", w->org, w->n);
		ev.kind = VOX_CALL_STARTED;
		vox_call_started *s = &ev.u.call_started;
		s->event_id = S(eid);
		memcpy(s->org_id.s, org, 37);
		memcpy(s->call_id.s, call, 37);
		s->direction = VOX_DIR_INBOUND;
		s->from_number = S(phone);
		s->to_number = S("+442071234567");
		s->started_at = (vox_time){1800000000 + w->n * 600, 0, true};
		break;
	}
	case W_ENDED: {
		int64_t d = a ? A_DURATION : B_DURATION;
		call_id(call, w->org, w->n);
		snprintf(eid, sizeof(eid), "ce-%d-%d", w->org, w->n);
		ev.kind = VOX_CALL_ENDED;
		vox_call_ended *e = &ev.u.call_ended;
		e->event_id = S(eid);
		memcpy(e->org_id.s, org, 37);
		memcpy(e->call_id.s, call, 37);
		e->status = VOX_CALL_COMPLETED;
		e->ended_at = (vox_time){1800000000 + w->n * 600 + d, 0, true};
		e->duration_seconds = d;
		break;
	}
	case W_TOPUP: {
		snprintf(eid, sizeof(eid), "pt-%d-%d", w->org, w->n);
		snprintf(pi, sizeof(pi), "pi_scale_%d_%d", w->org, w->n);
		ev.kind = VOX_PAYMENT_SUCCEEDED;
		vox_payment_succeeded *p = &ev.u.payment_succeeded;
		p->event_id = S(eid);
		memcpy(p->org_id.s, org, 37);
		p->stripe_payment_intent_id = S(pi);
		p->amount_pence = TOPUP;
		p->occurred_at = (vox_time){1800000000 + w->n, 0, true};
		break;
	}
	case W_LEAD: {
		static const int64_t scores[LEADS_PER_ORG] = {85, 40, 75, 20};
		snprintf(eid, sizeof(eid), "ls-%d-%d", w->org, w->n);
		snprintf(phone, sizeof(phone), "+4477009%02d%03d", w->org, w->n);
		ev.kind = VOX_LEAD_SCORED;
		vox_lead_scored *l = &ev.u.lead_scored;
		l->event_id = S(eid);
		memcpy(l->org_id.s, org, 37);
		l->phone = S(phone);
		l->lead_score = scores[w->n];
		l->scored_at = (vox_time){1800000000 + w->n, 0, true};
		break;
	}
	}
	publish(f, &ev, eid, async);
	if (w->dup) {
		snprintf(mid, sizeof(mid), "%s-again", eid);
		publish(f, &ev, mid, async);
	}
}

/* Interleaved by org, as a day of many clinics arrives. */
static int build_workload(witem *w, int max)
{
	int n = 0;
	for (int round = 0; round < CALLS_PER_ORG; round++)
		for (int o = 0; o < ORGS; o++) {
			w[n++] = (witem){W_STARTED, o, round, false};
			w[n++] = (witem){W_ENDED, o, round, false};
			if (round < TOPUPS_PER_B && o >= ORGS_A)
				w[n++] = (witem){W_TOPUP, o, round, false};
			if (round < LEADS_PER_ORG)
				w[n++] = (witem){W_LEAD, o, round, false};
			assert_true(n + 4 <= max);
		}
	for (int i = 0; i < n; i++)
		w[i].dup = i % DUP_EVERY == 3;
	return n;
}

static void publish_refunds(fixture *f)
{
	for (int o = ORGS_A; o < ORGS; o++) {
		char org[37], eid[64], rid[64], pi[64];
		vox_event ev;
		memset(&ev, 0, sizeof(ev));
		org_id(org, o);
		snprintf(eid, sizeof(eid), "pr-%d", o);
		snprintf(rid, sizeof(rid), "re_scale_%d", o);
		snprintf(pi, sizeof(pi), "pi_scale_%d_0", o);
		ev.kind = VOX_PAYMENT_REFUNDED;
		vox_payment_refunded *r = &ev.u.payment_refunded;
		r->event_id = S(eid);
		memcpy(r->org_id.s, org, 37);
		r->stripe_refund_id = S(rid);
		r->stripe_payment_intent_id = S(pi);
		r->amount_pence = REFUND;
		r->occurred_at = (vox_time){1800000100, 0, true};
		publish(f, &ev, eid, false);
		publish(f, &ev, rid, false); /* the same refund, another message */
	}
}

/* ---- checks ------------------------------------------------------------------ */

static const char *durables[] = {"vox-calls", "vox-billing-calls",
				 "vox-billing-payments", "vox-leads"};

static void wait_drained(fixture *f)
{
	int quiet = 0;
	long long v[VOX_NELEM(durables)];
	for (int t = 0; t < 600 && quiet < 2; t++) {
		bool zero = true;
		for (size_t d = 0; d < VOX_NELEM(durables); d++) {
			v[d] = th_consumer_outstanding(f->js, "EVENTS", durables[d]);
			zero = zero && v[d] == 0;
		}
		quiet = zero ? quiet + 1 : 0;
		th_sleep_ms(100);
	}
	for (size_t d = 0; d < VOX_NELEM(durables); d++) {
		if (v[d] != 0)
			fprintf(stderr, "consumer %s not drained: %lld\n", durables[d], v[d]);
		assert_int_equal(v[d], 0);
	}
}

static long long wait_sql(fixture *f, long long want, const char *sql)
{
	long long got = th_wait_int(f->dsn, sql, want, WAIT_MS);
	if (got != want)
		fprintf(stderr, "want %lld, got %lld: %s\n", want, got, sql);
	return got;
}


/* ---- the test -------------------------------------------------------------------- */

static void test_cluster_node_and_instances_lost_mid_run(void **state)
{
	fixture *f = *state;
	for (int o = 0; o < ORGS; o++) {
		char org[37];
		int opening = o < ORGS_A ? A_OPENING : B_OPENING;
		org_id(org, o);
		th_pg_okf(f->db,
			"INSERT INTO organizations (id, name, email, wallet_balance_pence,"
			" debt_limit_pence, low_balance_pence) VALUES ('%s', 'clinic %d',"
			" 'clinic%d@example.com', %d, 500, 1000)", org, o, o, opening);
		th_pg_okf(f->db, "INSERT INTO it_opening VALUES ('%s', %d)", org, opening);
	}
	for (int a = 0; a < NACTORS; a++)
		for (int k = 0; k < 2; k++)
			actor_start(f, a, k);

	/* the streams are R3 */
	jsStreamInfo *si = NULL;
	assert_int_equal(js_GetStreamInfo(&si, f->js, "EVENTS", NULL, NULL), NATS_OK);
	assert_int_equal(si->Config->Replicas, 3);
	jsStreamInfo_Destroy(si);

	static witem w[4096];
	int n = build_workload(w, (int)VOX_NELEM(w));
	int cut1 = n * 2 / 5, cut2 = n * 4 / 5;

	/* part 1 at once (async), so that the actors have a backlog */
	for (int i = 0; i < cut1; i++)
		publish_item(f, &w[i], true);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 30000;
	assert_int_equal(js_PublishAsyncComplete(f->js, &po), NATS_OK);

	/* one node and one instance of each actor die while batches are
	 * being applied */
	assert_int_equal(wait_sql(f, 1, "SELECT (count(*) > 0)::int FROM call_charges"), 1);
	/* for the log only: how much work was outstanding at the kill */
	fprintf(stderr, "scaleout: at the kill, calls %lld of %d applied; outstanding:",
		th_pg_int(f->db, "SELECT count(*) FROM call_charges"), ORGS * CALLS_PER_ORG);
	for (size_t d = 0; d < VOX_NELEM(durables); d++)
		fprintf(stderr, " %s %lld", durables[d],
			th_consumer_outstanding(f->js, "EVENTS", durables[d]));
	fprintf(stderr, "\n");
	node_kill(f, KILLED_NODE);
	for (int a = 0; a < NACTORS; a++) {
		th_stop(f->actors[a][1], SIGKILL, 5000);
		f->actors[a][1] = 0;
	}
	/* part 1 again, acked one by one: JetStream stores what the async
	 * publishing may have lost and drops the rest as duplicates */
	for (int i = 0; i < cut1; i++)
		publish_item(f, &w[i], false);
	for (int i = cut1; i < cut2; i++)
		publish_item(f, &w[i], false);

	/* a client given the list with the dead node first still connects
	 * (the surviving instances answer $SRV.PING) */
	{
		char url[600], user[] = "VOX_NATS_USER=admin", pw[128], p[64];
		const node *dead = &f->nodes[KILLED_NODE];
		size_t off = (size_t)snprintf(url, sizeof(url),
			"VOX_NATS_URL=nats://127.0.0.1:%d", dead->port);
		for (int i = 0; i < NODES; i++)
			if (i != KILLED_NODE)
				off += (size_t)snprintf(url + off, sizeof(url) - off,
					",nats://127.0.0.1:%d", f->nodes[i].port);
		password(p, sizeof(p), "admin");
		snprintf(pw, sizeof(pw), "VOX_NATS_PASSWORD=%s", p);
		char *env[] = {url, user, pw, NULL};
		const char *argv[] = {"voxctl", "services", "ping", NULL};
		th_run_result r;
		th_run("voxctl", argv, env, NULL, 30000, &r);
		th_run_expect(&r, 0, NULL);
		assert_non_null(strstr(r.out.data, "vox-billing"));
		th_run_release(&r);
	}

	/* back again: the node rejoins from its store, the instances restart */
	node_spawn(f, KILLED_NODE);
	for (int a = 0; a < NACTORS; a++)
		actor_start(f, a, 1);
	for (int i = cut2; i < n; i++)
		publish_item(f, &w[i], false);

	/* refunds once their top-ups are in */
	assert_int_equal(wait_sql(f, ORGS_B * TOPUPS_PER_B,
		"SELECT count(*) FROM credit_transactions WHERE type = 'topup'"),
		ORGS_B * TOPUPS_PER_B);
	publish_refunds(f);

	wait_drained(f);

	/* nothing lost in the R3 stream, nothing stored twice: one message per
	 * Nats-Msg-Id */
	long long dups = 0;
	for (int i = 0; i < n; i++)
		dups += w[i].dup;
	assert_int_equal(th_stream_count(f->js, "EVENTS"), n + dups + 2 * ORGS_B);

	/* calls: each once, complete */
	const int calls = ORGS * CALLS_PER_ORG;
	assert_int_equal(wait_sql(f, calls, "SELECT count(*) FROM calls"), calls);
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM calls c WHERE status = 'completed'"
		 " AND call_direction = 'inbound' AND duration_seconds ="
		 " CASE WHEN c.org_id < '5ca1e000-0000-4000-8000-%012d' THEN %d ELSE %d END",
		 ORGS_A, A_DURATION, B_DURATION);
	assert_int_equal(wait_sql(f, calls, sql), calls);

	/* money: each charge, top-up and refund once */
	assert_int_equal(wait_sql(f, calls, "SELECT count(*) FROM call_charges"), calls);
	assert_int_equal(wait_sql(f, calls,
		"SELECT count(*) FROM credit_transactions WHERE type = 'deduction'"), calls);
	assert_int_equal(wait_sql(f, ORGS_B,
		"SELECT count(*) FROM credit_transactions WHERE type = 'refund'"), ORGS_B);
	assert_int_equal(th_pg_int(f->db,
		"SELECT count(*) FROM credit_transactions WHERE type = 'topup'"),
		ORGS_B * TOPUPS_PER_B);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM organizations WHERE wallet_balance_pence ="
		 " CASE WHEN id < '5ca1e000-0000-4000-8000-%012d' THEN %d ELSE %d END",
		 ORGS_A, A_FINAL, B_FINAL);
	assert_int_equal(th_pg_int(f->db, sql), ORGS);
	assert_int_equal(th_invariants_broken(f->db, stderr), 0);

	/* leads: each scored once, each hot lead alerted once */
	assert_int_equal(wait_sql(f, ORGS * LEADS_PER_ORG,
		"SELECT count(*) FROM contacts WHERE phone LIKE '+4477009%'"
		" AND lead_score IS NOT NULL"),
		ORGS * LEADS_PER_ORG);
	assert_int_equal(th_pg_int(f->db, "SELECT count(*) FROM hot_lead_alerts"),
			 ORGS * HOT_PER_ORG);

	/* alerts exactly once: in the outbox, published, and in the stream */
	assert_int_equal(wait_sql(f, 0,
		"SELECT count(*) FROM vox_outbox WHERE published_at IS NULL"), 0);
	assert_int_equal(th_pg_int(f->db,
		"SELECT count(*) FROM vox_outbox WHERE subject LIKE 'alert.low_balance.%'"),
		ORGS_A);
	assert_int_equal(th_pg_int(f->db,
		"SELECT count(DISTINCT substring(subject from 19)) FROM vox_outbox"
		" WHERE subject LIKE 'alert.low_balance.%'"), ORGS_A);
	assert_int_equal(th_pg_int(f->db,
		"SELECT count(*) FROM vox_outbox WHERE subject LIKE 'alert.hot_lead.%'"),
		ORGS * HOT_PER_ORG);
	assert_int_equal(th_pg_int(f->db, "SELECT count(*) FROM vox_outbox"),
			 ORGS_A + ORGS * HOT_PER_ORG);
	assert_int_equal(th_stream_count(f->js, "ALERTS"), ORGS_A + ORGS * HOT_PER_ORG);
	assert_int_equal(th_stream_count(f->js, "DLQ"), 0);

	/* every instance, the restarted ones too, stops cleanly */
	for (int a = 0; a < NACTORS; a++)
		for (int k = 0; k < 2; k++) {
			assert_true(th_alive(f->actors[a][k]));
			int ws = th_stop(f->actors[a][k], SIGTERM, 30000);
			f->actors[a][k] = 0;
			assert_true(WIFEXITED(ws));
			assert_int_equal(WEXITSTATUS(ws), 0);
		}
}

/* ---- deploy/nats/partition.conf ----------------------------------------- */

#define PARTITIONS 8
#define PART_ORGS 40

/* The optional mapping: every event of one org lands in one partition,
 * call.ended.<org>.<p> with p in 0..7, and nothing stays on the
 * unpartitioned subject. */
static pid_t partition_server;

/* Stops the partition test's nats-server, also after a failed assertion. */
static int partition_teardown(void **state)
{
	VOX_UNUSED(state);
	if (partition_server > 0)
		th_stop(partition_server, SIGTERM, 10000);
	partition_server = 0;
	return 0;
}

static void test_partition_mapping_keeps_an_org_in_one_partition(void **state)
{
	VOX_UNUSED(state);
	char conf[1024], dir[600], store[700], log[700], port[16];
	int p;
	pick_ports(&p, 1);
	snprintf(conf, sizeof(conf), "%s/deploy/nats/partition.conf", VOX_SOURCE_DIR);
	snprintf(dir, sizeof(dir), "%s/partition-%ld", th_env("VOX_TEST_TMP"), (long)getpid());
	mkdir(dir, 0755);
	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(log, sizeof(log), "%s/nats.log", dir);
	snprintf(port, sizeof(port), "%d", p);
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid > 0)
		partition_server = pid;
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(125);
		execlp("nats-server", "nats-server", "-c", conf, "-a", "127.0.0.1",
		       "-p", port, "-sd", store, "-l", log, (char *)NULL);
		_exit(127);
	}
	for (int t = 0; t < 100 && !th_port_open(p); t++)
		th_sleep_ms(100);
	bool up = th_port_open(p);
	natsConnection *nc = NULL;
	natsSubscription *mapped = NULL, *plain = NULL;
	int seen[PART_ORGS], used[PARTITIONS] = {0}, got = 0, bad = 0, strays = 0;
	if (up) {
		char url[64];
		snprintf(url, sizeof(url), "nats://127.0.0.1:%d", p);
		th_nats_connect(url, &nc);
		assert_int_equal(natsConnection_SubscribeSync(&mapped, nc, "call.*.*.*"), NATS_OK);
		assert_int_equal(natsConnection_SubscribeSync(&plain, nc, "call.*.*"), NATS_OK);
		for (int o = 0; o < PART_ORGS; o++) {
			char subj[96], org[37];
			org_id(org, o);
			snprintf(subj, sizeof(subj), "call.ended.%s", org);
			seen[o] = -1;
			/* twice each: the second must land where the first did */
			for (int k = 0; k < 2; k++)
				assert_int_equal(natsConnection_PublishString(nc, subj, "x"), NATS_OK);
		}
		assert_int_equal(natsConnection_Flush(nc), NATS_OK);
		for (int i = 0; i < 2 * PART_ORGS; i++) {
			natsMsg *m = NULL;
			if (natsSubscription_NextMsg(&m, mapped, 5000) != NATS_OK)
				break;
			got++;
			char org[37];
			int part = -1, o = -1;
			/* call.ended.<org>.<p> */
			const char *subj = natsMsg_GetSubject(m);
			if (strlen(subj) > 11 + 36 && subj[11 + 36] == '.') {
				memcpy(org, subj + 11, 36);
				org[36] = '\0';
				char *end = NULL;
				long v = strtol(subj + 11 + 37, &end, 10);
				if (end && *end == '\0' && v >= 0 && v < PARTITIONS)
					part = (int)v;
				long n = strtol(org + 24, &end, 10);
				if (end && *end == '\0' && n >= 0 && n < PART_ORGS)
					o = (int)n;
			}
			if (part < 0 || o < 0 || (seen[o] >= 0 && seen[o] != part)) {
				fprintf(stderr, "unexpected subject %s\n", subj);
				bad++;
			} else {
				seen[o] = part;
				used[part]++;
			}
			natsMsg_Destroy(m);
		}
		natsMsg *m = NULL;
		if (natsSubscription_NextMsg(&m, plain, 200) == NATS_OK) {
			strays++;
			natsMsg_Destroy(m);
		}
	}
	natsSubscription_Destroy(mapped);
	natsSubscription_Destroy(plain);
	natsConnection_Destroy(nc);
	partition_teardown(NULL);
	assert_true(up);
	assert_int_equal(got, 2 * PART_ORGS);
	assert_int_equal(bad, 0);
	assert_int_equal(strays, 0);
	int partitions_used = 0;
	for (int i = 0; i < PARTITIONS; i++)
		partitions_used += used[i] > 0;
	/* 40 orgs spread over more than one of the 8 partitions */
	assert_true(partitions_used > 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cluster_node_and_instances_lost_mid_run,
						setup, teardown),
		cmocka_unit_test_teardown(test_partition_mapping_keeps_an_org_in_one_partition,
					  partition_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
