/*
 * Integration: vox under the NATS accounts and users of deploy/nats. The
 * test copies deploy/nats/secure.conf and accounts.conf unchanged into a
 * directory of its own, adds a tenants.conf with two tenant dashboards,
 * starts nats-server with it (random passwords in the server's
 * environment) and proves:
 *   - each denial at the server: a cross-tenant query, a bridge calling
 *     credentials.get, publishing an alert or another bridge's events
 *     (telephony only call.*.*, payments only payment.*.*, the scorer only
 *     lead.*.*), the alert reader publishing events or creating consumers,
 *     an actor stepping outside its own subjects or creating or updating
 *     a stream, a bridge, the alert reader or a tenant subscribing to
 *     another user's inbox (its replies and JetStream deliveries), to
 *     every inbox or to $JS.ACK.>, a wrong password; each one is a
 *     "Violation" line in the server's log naming the user and the
 *     subject;
 *   - that the streams are made by the operator (`voxctl streams apply` as
 *     admin) and that every client reads its replies under its own inbox
 *     prefix (_INBOX_<user>), the only one the server lets it read;
 *   - that the five actors, each with its own user, still work: a call
 *     flows to Postgres and the wallet, a hot lead reaches the ALERTS
 *     stream and the alert reader, a malformed event reaches the DLQ,
 *     queries and billing.authorize answer the right tenant, the vault
 *     answers `internal`, every actor answers $SRV.PING;
 *   - TLS with a throwaway CA made here with openssl: an actor connects
 *     with VOX_NATS_TLS_CA, and is refused without it or with another CA;
 *     with client verification, it connects with VOX_NATS_TLS_CERT/KEY
 *     and is refused without them.
 * Every password, key and credential is recorded with th_secret for the
 * suite's log check (scripts/check_secrets.sh).
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "harness.h"
#include "io/natsconn.h"

#define ORG_A "a5000000-0000-4000-8000-00000000000a"
#define ORG_B "b5000000-0000-4000-8000-00000000000b"
#define CONFIG_SECRET_FMT "{\"account_sid\":\"AC42\",\"auth_token\":\"%s\"}"

enum { U_ADMIN, U_CALLS, U_BILLING, U_LEADS, U_VAULT, U_QUERY, U_TELEPHONY,
       U_PAYMENTS, U_SCORER, U_ALERTS, U_INTERNAL, U_TENANT_A, U_TENANT_B,
       NUSERS };

static const char *const user_names[NUSERS] = {
	"admin", "calls", "billing", "leads", "vault", "query", "telephony",
	"payments", "scorer", "alerts", "internal", "dash-" ORG_A, "dash-" ORG_B};
static const char *const user_envs[NUSERS] = {
	"VOX_NATS_ADMIN_PASSWORD", "VOX_NATS_CALLS_PASSWORD",
	"VOX_NATS_BILLING_PASSWORD", "VOX_NATS_LEADS_PASSWORD",
	"VOX_NATS_VAULT_PASSWORD", "VOX_NATS_QUERY_PASSWORD",
	"VOX_NATS_TELEPHONY_PASSWORD", "VOX_NATS_PAYMENTS_PASSWORD",
	"VOX_NATS_SCORER_PASSWORD", "VOX_NATS_ALERTS_PASSWORD",
	"VOX_NATS_INTERNAL_PASSWORD", "VOX_NATS_TENANT_A_PASSWORD",
	"VOX_NATS_TENANT_B_PASSWORD"};

/* The actors, their users and binaries. */
static const struct {
	const char *bin;
	int user;
} actor_defs[] = {
	{"vox-calls", U_CALLS}, {"vox-billing", U_BILLING}, {"vox-leads", U_LEADS},
	{"vox-vault", U_VAULT}, {"vox-query", U_QUERY},
};
#define NACTORS 5

typedef struct server {
	int port;
	pid_t pid;
	char url[64];
	char log[700];
} server;

typedef struct fixture {
	char dir[512];
	char pw[NUSERS][48];
	char ring[128]; /* VOX_VAULT_KEYS */
	char tls_dir[600];
	server srv;
	char dsn[512];
	char qdsn[700];
	pid_t actors[NACTORS];
	char logs[NACTORS][700];
	PGconn *db;
	natsConnection *admin;
	jsCtx *js;
} fixture;

/* ---- files and processes ------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb");
	assert_non_null(in);
	FILE *out = fopen(to, "wb");
	assert_non_null(out);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* The tenants.conf the deploy template describes, for ORG_A and ORG_B. */
static void write_tenants(const fixture *f)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/tenants.conf", f->dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	const char *orgs[2] = {ORG_A, ORG_B};
	for (int i = 0; i < 2; i++) {
		const char *o = orgs[i];
		fprintf(fp,
			"TENANT_%d: {\n"
			"  users: [{user: \"dash-%s\", password: $%s, permissions: {\n"
			"    publish: {allow: [\"query.*.%s\", \"billing.authorize.%s\"]}\n"
			"    subscribe: {allow: [\"_INBOX_dash-%s.>\"]}\n"
			"  }}]\n"
			"  imports: [\n"
			"    {service: {account: VOX, subject: \"query.*.%s\"}}\n"
			"    {service: {account: VOX, subject: \"billing.authorize.%s\"}}\n"
			"  ]\n"
			"}\n",
			i + 1, o, user_envs[U_TENANT_A + i], o, o, o, o, o);
	}
	assert_int_equal(fclose(fp), 0);
}

/* A random secret that starts with a letter: nats-server reads a $VAR's
 * value as a config value, and one that starts with a digit (or "-") is
 * parsed as a number and refused. */
static void random_secret(char *out, size_t n)
{
	uint8_t raw[18];
	assert_true(n > 2);
	randombytes_buf(raw, sizeof(raw));
	out[0] = 's';
	assert_non_null(sodium_bin2base64(out + 1, n - 1, raw, sizeof(raw),
					  sodium_base64_VARIANT_URLSAFE_NO_PADDING));
}

/* Start nats-server with the copied deploy config on a free port, the
 * passwords in its environment only; TLS when cert is not NULL. */
static void server_start(fixture *f, server *s, const char *name,
			 const char *cert, const char *key, const char *verify_ca)
{
	char conf[700], store[700], port[16];
	memset(s, 0, sizeof(*s));
	s->port = th_free_port();
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d",
		 cert ? "tls" : "nats", s->port);
	snprintf(conf, sizeof(conf), "%s/secure.conf", f->dir);
	snprintf(store, sizeof(store), "%s/store-%s", f->dir, name);
	snprintf(s->log, sizeof(s->log), "%s/nats-%s.log", f->dir, name);
	pid_t parent = getpid();
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(125);
		for (int i = 0; i < NUSERS; i++)
			setenv(user_envs[i], f->pw[i], 1);
		if (cert && verify_ca)
			execlp("nats-server", "nats-server", "-c", conf, "-a",
			       "127.0.0.1", "-p", port, "-sd", store, "-l", s->log,
			       "--tls", "--tlscert", cert, "--tlskey", key,
			       "--tlsverify", "--tlscacert", verify_ca, (char *)NULL);
		else if (cert)
			execlp("nats-server", "nats-server", "-c", conf, "-a",
			       "127.0.0.1", "-p", port, "-sd", store, "-l", s->log,
			       "--tls", "--tlscert", cert, "--tlskey", key,
			       (char *)NULL);
		else
			execlp("nats-server", "nats-server", "-c", conf, "-a",
			       "127.0.0.1", "-p", port, "-sd", store, "-l", s->log,
			       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !th_port_open(s->port); i++) {
		int ws;
		if (waitpid(s->pid, &ws, WNOHANG) == s->pid) {
			s->pid = 0;
			fail_msg("nats-server exited at start (see %s)", s->log);
		}
		th_sleep_ms(100);
	}
	assert_true(th_port_open(s->port));
}

static void server_stop(server *s)
{
	if (s->pid > 0)
		th_stop(s->pid, SIGTERM, 10000);
	s->pid = 0;
}

/* Wait (bounded) until the file has a line with needle; true if it has. */
static bool wait_log(const char *path, const char *needle, long ms)
{
	for (long waited = 0;; waited += 50) {
		if (th_count_in_log(path, needle) > 0)
			return true;
		if (waited >= ms)
			return false;
		th_sleep_ms(50);
	}
}

/* The server logged a violation of this kind ("Publish" or
 * "Subscription") by user on subject. */
static void expect_violation(const server *s, const char *kind,
			     const char *user, const char *subject)
{
	char needle[512];
	snprintf(needle, sizeof(needle),
		 "%s Violation - User \"%s\", Subject \"%s\"", kind, user, subject);
	if (!wait_log(s->log, needle, 10000))
		fail_msg("no '%s' in %s", needle, s->log);
}

static void quiet_errors(natsConnection *nc, natsSubscription *sub,
			 natsStatus s, void *closure)
{
	VOX_UNUSED(nc);
	VOX_UNUSED(sub);
	VOX_UNUSED(s);
	VOX_UNUSED(closure);
}

/* Connect as user with password pw (NULL: no credentials), over TLS
 * trusting ca when it is not NULL, with the inbox prefix every vox client
 * uses (_INBOX_<user>: the only inbox the server lets the user read). */
static natsStatus connect_tls(const char *url, const char *user, const char *pw,
			      const char *ca, const char *cert, const char *key,
			      natsConnection **nc)
{
	natsOptions *o = NULL;
	char prefix[128];
	natsStatus s = natsOptions_Create(&o);
	assert_int_equal(s, NATS_OK);
	assert_true(vox_nats_inbox_prefix(prefix, sizeof(prefix), user, NULL));
	assert_int_equal(natsOptions_SetCustomInboxPrefix(o, prefix), NATS_OK);
	natsOptions_SetURL(o, url);
	natsOptions_SetTimeout(o, 5000);
	natsOptions_SetMaxReconnect(o, 0);
	natsOptions_SetErrorHandler(o, quiet_errors, NULL);
	if (user)
		natsOptions_SetUserInfo(o, user, pw);
	if (ca) {
		natsOptions_SetSecure(o, true);
		assert_int_equal(natsOptions_LoadCATrustedCertificates(o, ca), NATS_OK);
		if (cert)
			assert_int_equal(natsOptions_LoadCertificatesChain(o, cert, key),
					 NATS_OK);
	}
	*nc = NULL;
	s = natsConnection_Connect(nc, o);
	natsOptions_Destroy(o);
	return s;
}

static natsStatus connect_as(const char *url, const char *user, const char *pw,
			     const char *ca, natsConnection **nc)
{
	return connect_tls(url, user, pw, ca, NULL, NULL, nc);
}

static natsConnection *connect_user(fixture *f, int u)
{
	natsConnection *nc = NULL;
	natsStatus s = connect_as(f->srv.url, user_names[u], f->pw[u], NULL, &nc);
	if (s != NATS_OK)
		fail_msg("connect as %s: %s", user_names[u], natsStatus_GetText(s));
	return nc;
}

static pid_t spawn_actor_tls(fixture *f, int i, const char *url,
			     const char *ca, const char *cert, const char *key,
			     const char *log)
{
	static char e_url[128], e_user[64], e_pw[96], e_dsn[800], e_ring[160],
		e_ca[700], e_cert[700], e_key[700];
	int u = actor_defs[i].user;
	char *env[10];
	int k = 0;
	snprintf(e_url, sizeof(e_url), "VOX_NATS_URL=%s", url);
	snprintf(e_user, sizeof(e_user), "VOX_NATS_USER=%s", user_names[u]);
	snprintf(e_pw, sizeof(e_pw), "VOX_NATS_PASSWORD=%s", f->pw[u]);
	snprintf(e_dsn, sizeof(e_dsn), "VOX_PG_DSN=%s",
		 u == U_QUERY ? f->qdsn : f->dsn);
	snprintf(e_ring, sizeof(e_ring), "VOX_VAULT_KEYS=%s", f->ring);
	snprintf(e_ca, sizeof(e_ca), "VOX_NATS_TLS_CA=%s", ca ? ca : "");
	snprintf(e_cert, sizeof(e_cert), "VOX_NATS_TLS_CERT=%s", cert ? cert : "");
	snprintf(e_key, sizeof(e_key), "VOX_NATS_TLS_KEY=%s", key ? key : "");
	env[k++] = e_url;
	env[k++] = e_user;
	env[k++] = e_pw;
	env[k++] = e_dsn;
	env[k++] = e_ring;
	env[k++] = e_ca;
	env[k++] = e_cert;
	env[k++] = e_key;
	env[k] = NULL;
	unlink(log);
	return th_spawn(actor_defs[i].bin, env, log);
}

static pid_t spawn_actor(fixture *f, int i, const char *url, const char *ca,
			 const char *log)
{
	return spawn_actor_tls(f, i, url, ca, NULL, NULL, log);
}

/* `voxctl streams apply` as the operators' user. */
static void voxctl_streams_apply_as_admin(fixture *f)
{
	char e_url[128], e_user[64], e_pw[96];
	snprintf(e_url, sizeof(e_url), "VOX_NATS_URL=%s", f->srv.url);
	snprintf(e_user, sizeof(e_user), "VOX_NATS_USER=%s", user_names[U_ADMIN]);
	snprintf(e_pw, sizeof(e_pw), "VOX_NATS_PASSWORD=%s", f->pw[U_ADMIN]);
	char *env[] = {e_url, e_user, e_pw, NULL};
	const char *argv[] = {"voxctl", "streams", "apply", "--wait", "10", NULL};
	th_run_result r;
	th_run("voxctl", argv, env, NULL, 20000, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(th_count_str(r.out.data, "\"action\":\"created\""), 3);
	th_run_release(&r);
}

/* ---- fixture --------------------------------------------------------------- */

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	*state = f; /* the teardown runs after a failed setup too */
	char from[700], to[700];
	uint8_t key[32];
	char key64[64];
	assert_true(sodium_init() >= 0);
	snprintf(f->dir, sizeof(f->dir), "%s/security-%ld", th_env("VOX_TEST_TMP"),
		 (long)getpid());
	mkdir(f->dir, 0755);
	const char *files[] = {"secure.conf", "accounts.conf"};
	for (size_t i = 0; i < VOX_NELEM(files); i++) {
		snprintf(from, sizeof(from), "%s/deploy/nats/%s", VOX_SOURCE_DIR, files[i]);
		snprintf(to, sizeof(to), "%s/%s", f->dir, files[i]);
		copy_file(from, to);
	}
	write_tenants(f);
	for (int i = 0; i < NUSERS; i++) {
		random_secret(f->pw[i], sizeof(f->pw[i]));
		th_secret(f->pw[i]);
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(key64, sizeof(key64), key, sizeof(key),
			  sodium_base64_VARIANT_ORIGINAL);
	th_secret(key64);
	snprintf(f->ring, sizeof(f->ring), "1 %s", key64);

	th_pg_migrated_db("security", f->dsn, sizeof(f->dsn));
	const char *name = strstr(f->dsn, "dbname=");
	assert_non_null(name);
	snprintf(f->qdsn, sizeof(f->qdsn), "%s %s", th_env("VOX_PG_QUERY_DSN"), name);
	f->db = th_pg_connect(f->dsn);
	th_pg_okf(f->db,
		  "INSERT INTO organizations (id, name, email, wallet_balance_pence)"
		  " VALUES ('%s', 'org a', 'a@example.com', 5000),"
		  " ('%s', 'org b', 'b@example.com', 7000)", ORG_A, ORG_B);

	server_start(f, &f->srv, "plain", NULL, NULL, NULL);
	f->admin = connect_user(f, U_ADMIN);
	assert_int_equal(natsConnection_JetStream(&f->js, f->admin, NULL), NATS_OK);
	/* the operator makes the streams (only admin may); the actors check */
	voxctl_streams_apply_as_admin(f);
	for (int i = 0; i < NACTORS; i++) {
		snprintf(f->logs[i], sizeof(f->logs[i]), "%s/%s.log", f->dir,
			 actor_defs[i].bin);
		f->actors[i] = spawn_actor(f, i, f->srv.url, NULL, f->logs[i]);
	}
	for (int i = 0; i < NACTORS; i++)
		th_wait_started(&f->actors[i], actor_defs[i].bin, f->logs[i], 300);
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	for (int i = 0; i < NACTORS; i++) {
		if (f->actors[i] > 0) {
			int ws = th_stop(f->actors[i], SIGTERM, 15000);
			if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
				fprintf(stderr, "%s did not stop cleanly (%d), see %s\n",
					actor_defs[i].bin, ws, f->logs[i]);
			assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
		}
		/* no actor was ever refused anything it needs */
		assert_int_equal(th_count_in_log(f->logs[i], "Not Permitted"), 0);
		assert_int_equal(th_count_in_log(f->logs[i], "level=error"), 0);
	}
	jsCtx_Destroy(f->js);
	natsConnection_Destroy(f->admin);
	server_stop(&f->srv);
	PQfinish(f->db);
	free(f);
	return 0;
}

/* ---- helpers for the checks -------------------------------------------------- */

/* Request with an empty msgpack map ("\x80") unless body is given. */
static natsStatus request(natsConnection *nc, const char *subject, th_body *b,
			  th_reply *r)
{
	natsStatus s = th_request_raw(nc, subject, b ? b->sb.data : "\x80",
				      b ? b->sb.size : 1, NULL, NULL, r);
	if (b)
		msgpack_sbuffer_destroy(&b->sb);
	return s;
}

/* A request the server must refuse: no answer, and the violation logged. */
static void expect_request_denied(fixture *f, natsConnection *nc, int u,
				  const char *subject)
{
	natsMsg *reply = NULL;
	natsStatus s = natsConnection_Request(&reply, nc, subject, "\x80", 1, 1000);
	if (s == NATS_OK)
		fail_msg("%s got an answer on %s", user_names[u], subject);
	natsMsg_Destroy(reply);
	expect_violation(&f->srv, "Publish", user_names[u], subject);
}

static void expect_publish_denied(fixture *f, natsConnection *nc, int u,
				  const char *subject)
{
	assert_int_equal(natsConnection_PublishString(nc, subject, "x"), NATS_OK);
	natsConnection_FlushTimeout(nc, 2000);
	expect_violation(&f->srv, "Publish", user_names[u], subject);
}

static void expect_subscribe_denied(fixture *f, natsConnection *nc, int u,
				    const char *subject)
{
	natsSubscription *sub = NULL;
	assert_int_equal(natsConnection_SubscribeSync(&sub, nc, subject), NATS_OK);
	natsConnection_FlushTimeout(nc, 2000);
	expect_violation(&f->srv, "Subscription", user_names[u], subject);
	natsSubscription_Destroy(sub);
}

static int64_t map_int(const th_reply *r, const char *k)
{
	const msgpack_object *v = th_get_key(&r->u.data, k);
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)v->via.u64;
	assert_int_equal(v->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
	return v->via.i64;
}

/* voxctl publish as bridge user u (telephony, payments or scorer). */
static void voxctl_publish_as(fixture *f, int u, const char *subject,
			      const char *json)
{
	char e_url[128], e_user[64], e_pw[96];
	snprintf(e_url, sizeof(e_url), "VOX_NATS_URL=%s", f->srv.url);
	snprintf(e_user, sizeof(e_user), "VOX_NATS_USER=%s", user_names[u]);
	snprintf(e_pw, sizeof(e_pw), "VOX_NATS_PASSWORD=%s", f->pw[u]);
	char *env[] = {e_url, e_user, e_pw, NULL};
	const char *argv[] = {"voxctl", "publish", subject, json, NULL};
	th_run_result r;
	th_run("voxctl", argv, env, NULL, 15000, &r);
	th_run_expect(&r, 0, NULL);
	th_run_release(&r);
}

static long long wait_stream(fixture *f, const char *stream, long long want)
{
	long long v = -1;
	for (int i = 0; i < 200; i++) {
		v = th_stream_count(f->js, stream);
		if (v == want)
			break;
		th_sleep_ms(50);
	}
	return v;
}

/* ---- the actors work under their users ------------------------------------- */

static void test_actors_work(void **state)
{
	fixture *f = *state;
	char subject[160], json[700];

	/* a call: the telephony bridge publishes it with voxctl (the client
	 * library), under its own user and inbox */
	snprintf(subject, sizeof(subject), "call.started.%s", ORG_A);
	snprintf(json, sizeof(json),
		 "{\"event_id\": \"sec-start-1\", \"org_id\": \"%s\","
		 " \"call_id\": \"c5000000-0000-4000-8000-000000000001\","
		 " \"direction\": \"inbound\", \"from_number\": \"+447700900123\","
		 " \"to_number\": \"+442071838750\","
		 " \"started_at\": \"2026-11-24T10:00:00Z\"}", ORG_A);
	voxctl_publish_as(f, U_TELEPHONY, subject, json);
	snprintf(subject, sizeof(subject), "call.ended.%s", ORG_A);
	snprintf(json, sizeof(json),
		 "{\"event_id\": \"sec-end-1\", \"org_id\": \"%s\","
		 " \"call_id\": \"c5000000-0000-4000-8000-000000000001\","
		 " \"ended_at\": \"2026-11-24T10:02:05Z\", \"duration_seconds\": 125,"
		 " \"status\": \"completed\"}", ORG_A);
	voxctl_publish_as(f, U_TELEPHONY, subject, json);
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM calls WHERE org_id = '%s' AND status = 'completed'",
		 ORG_A);
	assert_int_equal(th_wait_int(f->dsn, sql, 1, 20000), 1);
	/* 125 s at 70 a minute: ceil(125 * 70 / 60) = 146 */
	snprintf(sql, sizeof(sql),
		 "SELECT wallet_balance_pence FROM organizations WHERE id = '%s'", ORG_A);
	assert_int_equal(th_wait_int(f->dsn, sql, 5000 - 146, 20000), 5000 - 146);

	/* a hot lead: vox-leads publishes alert.hot_lead, the alert reader
	 * reads it through a consumer the operator (admin) created */
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsConsumerConfig_Init(&cc);
	cc.Durable = "dashboard-alerts";
	cc.FilterSubject = "alert.>";
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	assert_int_equal(js_AddConsumer(&ci, f->js, "ALERTS", &cc, NULL, NULL), NATS_OK);
	jsConsumerInfo_Destroy(ci);
	long long alerts0 = th_stream_count(f->js, "ALERTS");
	snprintf(subject, sizeof(subject), "lead.scored.%s", ORG_A);
	snprintf(json, sizeof(json),
		 "{\"event_id\": \"sec-score-1\", \"org_id\": \"%s\","
		 " \"phone\": \"+447700900123\","
		 " \"call_id\": \"c5000000-0000-4000-8000-000000000001\","
		 " \"lead_score\": 86, \"scored_at\": \"2026-11-24T10:03:20Z\"}", ORG_A);
	voxctl_publish_as(f, U_SCORER, subject, json);
	assert_int_equal(wait_stream(f, "ALERTS", alerts0 + 1), alerts0 + 1);

	natsConnection *alerts = connect_user(f, U_ALERTS);
	jsCtx *ajs = NULL;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = "ALERTS";
	so.Consumer = "dashboard-alerts";
	assert_int_equal(natsConnection_JetStream(&ajs, alerts, NULL), NATS_OK);
	assert_int_equal(js_PullSubscribe(&sub, ajs, "alert.>", "dashboard-alerts",
					  NULL, &so, NULL), NATS_OK);
	natsMsgList list = {0};
	assert_int_equal(natsSubscription_Fetch(&list, sub, 10, 5000, NULL), NATS_OK);
	assert_int_equal(list.Count, 1);
	snprintf(subject, sizeof(subject), "alert.hot_lead.%s", ORG_A);
	assert_string_equal(natsMsg_GetSubject(list.Msgs[0]), subject);
	assert_int_equal(natsMsg_AckSync(list.Msgs[0], NULL, NULL), NATS_OK);
	natsMsgList_Destroy(&list);
	assert_int_equal(th_consumer_outstanding(f->js, "ALERTS", "dashboard-alerts"), 0);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(ajs);
	natsConnection_Destroy(alerts);

	/* a malformed event: vox-calls dead-letters it */
	natsConnection *bridge = connect_user(f, U_TELEPHONY);
	jsCtx *bjs = NULL;
	assert_int_equal(natsConnection_JetStream(&bjs, bridge, NULL), NATS_OK);
	long long dlq0 = th_stream_count(f->js, "DLQ");
	snprintf(subject, sizeof(subject), "call.started.%s", ORG_A);
	th_publish_raw(bjs, subject, "not msgpack", 11, "sec-bad-1");
	assert_int_equal(wait_stream(f, "DLQ", dlq0 + 1), dlq0 + 1);
	jsCtx_Destroy(bjs);
	natsConnection_Destroy(bridge);

	/* queries and billing.authorize, by each tenant for its own org */
	th_reply r;
	natsConnection *dash_a = connect_user(f, U_TENANT_A);
	natsConnection *dash_b = connect_user(f, U_TENANT_B);
	assert_int_equal(request(dash_a, "query.wallet." ORG_A, NULL, &r), NATS_OK);
	assert_string_equal(r.code, "");
	assert_int_equal(map_int(&r, "balance_pence"), 5000 - 146);
	th_reply_free(&r);
	assert_int_equal(request(dash_b, "query.wallet." ORG_B, NULL, &r), NATS_OK);
	assert_string_equal(r.code, "");
	assert_int_equal(map_int(&r, "balance_pence"), 7000);
	th_reply_free(&r);
	assert_int_equal(request(dash_a, "billing.authorize." ORG_A, NULL, &r), NATS_OK);
	assert_string_equal(r.code, "");
	assert_true(th_get_key(&r.u.data, "allowed")->type == MSGPACK_OBJECT_BOOLEAN);
	assert_true(th_get_key(&r.u.data, "allowed")->via.boolean);
	th_reply_free(&r);
	natsConnection_Destroy(dash_a);
	natsConnection_Destroy(dash_b);

	/* credentials, by an internal service */
	char token[48], config[200];
	random_secret(token, sizeof(token));
	snprintf(config, sizeof(config), CONFIG_SECRET_FMT, token);
	th_secret(token);
	natsConnection *internal = connect_user(f, U_INTERNAL);
	th_body b;
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "twilio");
	th_body_bin(&b, "config", config, strlen(config));
	assert_int_equal(request(internal, "credentials.put." ORG_A, &b, &r), NATS_OK);
	assert_string_equal(r.code, "");
	assert_int_equal(map_int(&r, "key_version"), 1);
	th_reply_free(&r);
	vox_buf got;
	vox_buf_init(&got);
	assert_int_equal(th_cred_get(internal, "credentials.get." ORG_A, "twilio", NULL,
				     &r, &got), NATS_OK);
	assert_string_equal(r.code, "");
	assert_int_equal(got.len, strlen(config));
	assert_memory_equal(got.data, config, strlen(config));
	vox_buf_release(&got);
	th_reply_free(&r);
	/* and a query, as the internal services may */
	assert_int_equal(request(internal, "query.wallet." ORG_B, NULL, &r), NATS_OK);
	assert_string_equal(r.code, "");
	th_reply_free(&r);
	natsConnection_Destroy(internal);

	/* every actor answers the services protocol under its user */
	natsSubscription *inbox_sub = NULL;
	char inbox[128];
	natsInbox *ib = NULL;
	assert_int_equal(natsInbox_Create(&ib), NATS_OK);
	snprintf(inbox, sizeof(inbox), "%s", (const char *)ib);
	natsInbox_Destroy(ib);
	assert_int_equal(natsConnection_SubscribeSync(&inbox_sub, f->admin, inbox), NATS_OK);
	assert_int_equal(natsConnection_PublishRequestString(f->admin, "$SRV.PING", inbox, ""),
			 NATS_OK);
	int pongs = 0;
	for (int i = 0; i < 100 && pongs < NACTORS; i++) {
		natsMsg *m = NULL;
		if (natsSubscription_NextMsg(&m, inbox_sub, 100) == NATS_OK) {
			pongs++;
			natsMsg_Destroy(m);
		}
	}
	assert_int_equal(pongs, NACTORS);
	natsSubscription_Destroy(inbox_sub);

	/* all of it under the users' own inbox prefixes: the server refused
	 * none of the actors', bridges', reader's, tenants' or internal's
	 * subscriptions or publishes (the denial tests come after this one) */
	for (int u = U_CALLS; u < NUSERS; u++) {
		char needle[128];
		snprintf(needle, sizeof(needle), "Violation - User \"%s\"",
			 user_names[u]);
		if (th_count_in_log(f->srv.log, needle) != 0)
			fail_msg("'%s' in %s", needle, f->srv.log);
	}
}

/* ---- the denials, each seen by the server ----------------------------------- */

static void test_tenant_denials(void **state)
{
	fixture *f = *state;
	natsConnection *a = connect_user(f, U_TENANT_A);
	natsConnection *b = connect_user(f, U_TENANT_B);
	/* another tenant's query and authorization */
	expect_request_denied(f, a, U_TENANT_A, "query.wallet." ORG_B);
	expect_request_denied(f, a, U_TENANT_A, "query.calls." ORG_B);
	expect_request_denied(f, a, U_TENANT_A, "billing.authorize." ORG_B);
	expect_request_denied(f, b, U_TENANT_B, "query.wallet." ORG_A);
	/* credentials and events are not theirs at all */
	expect_request_denied(f, a, U_TENANT_A, "credentials.get." ORG_A);
	expect_publish_denied(f, a, U_TENANT_A, "call.started." ORG_A);
	expect_subscribe_denied(f, a, U_TENANT_A, "query.>");
	/* the same connection still gets its own org's answers */
	th_reply r;
	assert_int_equal(request(a, "query.wallet." ORG_A, NULL, &r), NATS_OK);
	assert_string_equal(r.code, "");
	th_reply_free(&r);
	natsConnection_Destroy(a);
	natsConnection_Destroy(b);
}

/* What every bridge may not do, whichever it is. (That a refused request
 * gets no answer is shown for the first; for the others the refused
 * publish is enough, and saves the wait for the answer.) */
static void expect_bridge_denials(fixture *f, int u)
{
	natsConnection *nc = connect_user(f, u);
	static const char *const requests[] = {"credentials.get." ORG_A,
					       "query.wallet." ORG_A,
					       "billing.authorize." ORG_A};
	for (size_t i = 0; i < VOX_NELEM(requests); i++) {
		if (u == U_TELEPHONY)
			expect_request_denied(f, nc, u, requests[i]);
		else
			expect_publish_denied(f, nc, u, requests[i]);
	}
	expect_publish_denied(f, nc, u, "alert.hot_lead." ORG_A);
	expect_publish_denied(f, nc, u, "dlq.call.started." ORG_A);
	expect_publish_denied(f, nc, u, "$JS.API.STREAM.DELETE.EVENTS");
	expect_subscribe_denied(f, nc, u, "call.>");
	expect_subscribe_denied(f, nc, u, "credentials.*.*");
	natsConnection_Destroy(nc);
}

static void test_bridge_denials(void **state)
{
	fixture *f = *state;
	long long alerts0 = th_stream_count(f->js, "ALERTS");
	long long events0 = th_stream_count(f->js, "EVENTS");
	for (int u = U_TELEPHONY; u <= U_SCORER; u++)
		expect_bridge_denials(f, u);
	/* each bridge publishes only its own kind of event: a telephony
	 * bridge cannot fake a payment, nor a payments bridge a call */
	natsConnection *t = connect_user(f, U_TELEPHONY);
	natsConnection *p = connect_user(f, U_PAYMENTS);
	natsConnection *sc = connect_user(f, U_SCORER);
	expect_publish_denied(f, t, U_TELEPHONY, "payment.succeeded." ORG_A);
	expect_publish_denied(f, t, U_TELEPHONY, "lead.scored." ORG_A);
	expect_publish_denied(f, p, U_PAYMENTS, "call.ended." ORG_A);
	expect_publish_denied(f, p, U_PAYMENTS, "lead.scored." ORG_A);
	expect_publish_denied(f, sc, U_SCORER, "call.started." ORG_A);
	expect_publish_denied(f, sc, U_SCORER, "payment.refunded." ORG_A);
	natsConnection_Destroy(t);
	natsConnection_Destroy(p);
	natsConnection_Destroy(sc);
	assert_int_equal(th_stream_count(f->js, "ALERTS"), alerts0);
	assert_int_equal(th_stream_count(f->js, "EVENTS"), events0);

	/* and its own kind works: a top-up by the payments bridge reaches
	 * the wallet */
	char json[400];
	snprintf(json, sizeof(json),
		 "{\"event_id\": \"sec-pay-1\", \"org_id\": \"%s\","
		 " \"stripe_payment_intent_id\": \"pi_sec_1\", \"amount_pence\": 300,"
		 " \"occurred_at\": \"2026-11-24T10:05:00Z\"}", ORG_B);
	voxctl_publish_as(f, U_PAYMENTS, "payment.succeeded." ORG_B, json);
	assert_int_equal(th_wait_int(f->dsn,
		"SELECT wallet_balance_pence FROM organizations WHERE id = '" ORG_B "'",
		7300, 20000), 7300);
}

/* Replies, JetStream deliveries and acks are nobody else's: a bridge, the
 * alert reader and a tenant may not subscribe to another user's inbox
 * (where a pull consumer delivers to its fetcher: _INBOX_calls.> carries
 * vox-calls' events, _INBOX_internal.> the credentials internal asked
 * for), to every inbox, nor to $JS.ACK.>. */
static void test_inboxes_are_private(void **state)
{
	fixture *f = *state;
	static const char *const others[] = {
		"_INBOX.>", "_INBOX_internal.>", "_INBOX_calls.>",
		"_INBOX_alerts.>", "_INBOX_admin.>", "$JS.ACK.>",
		"$JS.ACK.EVENTS.vox-calls.>", ">"};
	const int who[] = {U_TELEPHONY, U_PAYMENTS, U_SCORER, U_ALERTS,
			   U_TENANT_A};
	for (size_t i = 0; i < VOX_NELEM(who); i++) {
		natsConnection *nc = connect_user(f, who[i]);
		for (size_t k = 0; k < VOX_NELEM(others); k++) {
			/* its own inbox is not "another's" */
			if (who[i] == U_ALERTS && strcmp(others[k], "_INBOX_alerts.>") == 0)
				continue;
			expect_subscribe_denied(f, nc, who[i], others[k]);
		}
		natsConnection_Destroy(nc);
	}
	/* a tenant's inbox is its own too */
	natsConnection *b = connect_user(f, U_TENANT_B);
	expect_subscribe_denied(f, b, U_TENANT_B, "_INBOX_dash-" ORG_A ".>");
	natsConnection_Destroy(b);

	/* the prefix is what lets a user read its replies: the same user
	 * with libnats's default "_INBOX" gets none */
	natsOptions *o = NULL;
	natsConnection *nc = NULL;
	natsMsg *reply = NULL;
	assert_int_equal(natsOptions_Create(&o), NATS_OK);
	natsOptions_SetURL(o, f->srv.url);
	natsOptions_SetMaxReconnect(o, 0);
	natsOptions_SetErrorHandler(o, quiet_errors, NULL);
	natsOptions_SetUserInfo(o, user_names[U_INTERNAL], f->pw[U_INTERNAL]);
	assert_int_equal(natsConnection_Connect(&nc, o), NATS_OK);
	natsOptions_Destroy(o);
	assert_int_not_equal(natsConnection_Request(&reply, nc, "query.wallet." ORG_A,
						    "\x80", 1, 1000), NATS_OK);
	natsMsg_Destroy(reply);
	natsConnection_Destroy(nc);
	char needle[160];
	snprintf(needle, sizeof(needle),
		 "Subscription Violation - User \"internal\", Subject \"_INBOX.");
	assert_true(wait_log(f->srv.log, needle, 10000));
}

/* The streams are the operator's: no actor user may create, update or
 * delete one (it may read a stream's configuration, to check it). */
static void test_actors_cannot_change_streams(void **state)
{
	fixture *f = *state;
	jsStreamInfo *before = NULL;
	assert_int_equal(js_GetStreamInfo(&before, f->js, "EVENTS", NULL, NULL), NATS_OK);
	for (int u = U_CALLS; u <= U_QUERY; u++) {
		natsConnection *nc = connect_user(f, u);
		jsCtx *js = NULL;
		jsOptions jo;
		jsOptions_Init(&jo);
		jo.Wait = 500;
		assert_int_equal(natsConnection_JetStream(&js, nc, &jo), NATS_OK);
		const char *subjects[] = {"call.*.*", "payment.*.*", "lead.*.*"};
		jsStreamConfig cfg;
		jsStreamInfo *si = NULL;
		jsStreamConfig_Init(&cfg);
		cfg.Name = "EVENTS";
		cfg.Subjects = subjects;
		cfg.SubjectsLen = 3;
		cfg.Storage = js_MemoryStorage;
		cfg.MaxAge = 1000000000LL;
		assert_int_not_equal(js_UpdateStream(&si, js, &cfg, NULL, NULL), NATS_OK);
		jsStreamInfo_Destroy(si);
		si = NULL;
		expect_violation(&f->srv, "Publish", user_names[u],
				 "$JS.API.STREAM.UPDATE.EVENTS");
		cfg.Name = "SHADOW";
		cfg.Subjects = subjects + 2;
		cfg.SubjectsLen = 1;
		assert_int_not_equal(js_AddStream(&si, js, &cfg, NULL, NULL), NATS_OK);
		jsStreamInfo_Destroy(si);
		expect_violation(&f->srv, "Publish", user_names[u],
				 "$JS.API.STREAM.CREATE.SHADOW");
		expect_publish_denied(f, nc, u, "$JS.API.STREAM.DELETE.DLQ");
		expect_publish_denied(f, nc, u, "$JS.API.STREAM.PURGE.EVENTS");
		jsCtx_Destroy(js);
		natsConnection_Destroy(nc);
	}
	/* nothing changed: the same stream, no new one */
	jsStreamInfo *after = NULL;
	assert_int_equal(js_GetStreamInfo(&after, f->js, "EVENTS", NULL, NULL), NATS_OK);
	assert_int_equal(after->Config->Storage, js_FileStorage);
	assert_true(after->Config->MaxAge == before->Config->MaxAge);
	assert_true(after->Created == before->Created);
	jsStreamInfo_Destroy(after);
	jsStreamInfo_Destroy(before);
	assert_int_equal(th_stream_count(f->js, "SHADOW"), -1);
}

static void test_alerts_denials(void **state)
{
	fixture *f = *state;
	natsConnection *nc = connect_user(f, U_ALERTS);
	expect_publish_denied(f, nc, U_ALERTS, "call.started." ORG_A);
	expect_publish_denied(f, nc, U_ALERTS, "alert.low_balance." ORG_A);
	expect_request_denied(f, nc, U_ALERTS, "query.wallet." ORG_A);
	expect_subscribe_denied(f, nc, U_ALERTS, "call.>");
	/* no consumers of its own: a push consumer could deliver anywhere */
	jsCtx *js = NULL;
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	jsConsumerConfig_Init(&cc);
	cc.Durable = "sneaky";
	cc.DeliverSubject = "call.started." ORG_A;
	cc.AckPolicy = js_AckNone;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 1000;
	assert_int_not_equal(js_AddConsumer(&ci, js, "ALERTS", &cc, &jo, NULL), NATS_OK);
	jsConsumerInfo_Destroy(ci);
	expect_violation(&f->srv, "Publish", "alerts",
			 "$JS.API.CONSUMER.DURABLE.CREATE.ALERTS.sneaky");
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

static void test_service_denials(void **state)
{
	fixture *f = *state;
	/* internal services: requests, not events */
	natsConnection *nc = connect_user(f, U_INTERNAL);
	expect_publish_denied(f, nc, U_INTERNAL, "call.ended." ORG_A);
	expect_subscribe_denied(f, nc, U_INTERNAL, "credentials.*.*");
	natsConnection_Destroy(nc);
	/* actors: only their own subjects */
	nc = connect_user(f, U_QUERY);
	expect_request_denied(f, nc, U_QUERY, "credentials.get." ORG_A);
	expect_publish_denied(f, nc, U_QUERY, "call.started." ORG_A);
	natsConnection_Destroy(nc);
	nc = connect_user(f, U_CALLS);
	expect_publish_denied(f, nc, U_CALLS, "alert.hot_lead." ORG_A);
	expect_publish_denied(f, nc, U_CALLS, "$JS.ACK.EVENTS.vox-billing-calls.1.1.1.1.1.1");
	expect_subscribe_denied(f, nc, U_CALLS, "credentials.*.*");
	natsConnection_Destroy(nc);
	nc = connect_user(f, U_VAULT);
	expect_publish_denied(f, nc, U_VAULT, "alert.hot_lead." ORG_A);
	expect_subscribe_denied(f, nc, U_VAULT, "query.*.*");
	natsConnection_Destroy(nc);
}

static void test_authentication(void **state)
{
	fixture *f = *state;
	natsConnection *nc = NULL;
	assert_int_not_equal(connect_as(f->srv.url, "telephony", "wrong", NULL, &nc),
			     NATS_OK);
	assert_null(nc);
	assert_int_not_equal(connect_as(f->srv.url, NULL, NULL, NULL, &nc), NATS_OK);
	assert_null(nc);
	/* a tenant's password is not another's */
	assert_int_not_equal(connect_as(f->srv.url, user_names[U_TENANT_A],
					f->pw[U_TENANT_B], NULL, &nc), NATS_OK);
	assert_null(nc);
}

/* ---- TLS ------------------------------------------------------------------ */

static void shell(const char *cmd)
{
	int ws = system(cmd);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		fail_msg("command failed: %s", cmd);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate
 * signed by it, and an unrelated second CA, in dir. */
static void make_certs(const char *dir)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s';"
		 " openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
		 "  -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=vox-test-ca 2>/dev/null;"
		 " openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
		 "  -nodes -keyout other.key -out other.pem -days 2 -subj /CN=vox-test-ca 2>/dev/null;"
		 " openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
		 "  -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null;"
		 " printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext;"
		 " openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key"
		 "  -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null;"
		 " openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
		 "  -keyout client.key -out client.csr -subj /CN=vox-vault 2>/dev/null;"
		 " openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key"
		 "  -CAcreateserial -out client.pem -days 2 2>/dev/null;"
		 " chmod 600 ca.key other.key server.key client.key",
		 dir);
	shell(cmd);
}

static void test_tls(void **state)
{
	fixture *f = *state;
	char dir[700], ca[800], other[800], cert[800], key[800], log[800];
	snprintf(dir, sizeof(dir), "%s/tls", f->dir);
	mkdir(dir, 0700);
	make_certs(dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(other, sizeof(other), "%s/other.pem", dir);
	snprintf(cert, sizeof(cert), "%s/server.pem", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	server tls;
	server_start(f, &tls, "tls", cert, key, NULL);

	/* a client: with the CA, without TLS, with another CA */
	natsConnection *nc = NULL;
	assert_int_equal(connect_as(tls.url, "internal", f->pw[U_INTERNAL], ca, &nc),
			 NATS_OK);
	char plain[64];
	snprintf(plain, sizeof(plain), "nats://127.0.0.1:%d", tls.port);
	natsConnection *bad = NULL;
	assert_int_not_equal(connect_as(plain, "internal", f->pw[U_INTERNAL], NULL, &bad),
			     NATS_OK);
	assert_null(bad);
	assert_int_not_equal(connect_as(tls.url, "internal", f->pw[U_INTERNAL], other, &bad),
			     NATS_OK);
	assert_null(bad);

	/* vox-vault (actor 3) with VOX_NATS_TLS_CA serves over TLS */
	snprintf(log, sizeof(log), "%s/vox-vault-tls.log", f->dir);
	pid_t p = spawn_actor(f, 3, tls.url, ca, log);
	th_wait_started(&p, "vox-vault", log, 300);
	th_reply r;
	assert_int_equal(request(nc, "credentials.list." ORG_B, NULL, &r), NATS_OK);
	assert_string_equal(r.code, "");
	th_reply_free(&r);
	int ws = th_stop(p, SIGTERM, 15000);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	natsConnection_Destroy(nc);

	/* and is refused without the CA, or with another one */
	const char *cas[] = {NULL, other};
	for (size_t i = 0; i < VOX_NELEM(cas); i++) {
		snprintf(log, sizeof(log), "%s/vox-vault-tls-refused-%zu.log", f->dir, i);
		p = spawn_actor(f, 3, tls.url, cas[i], log);
		assert_true(wait_log(log, "nats connect:", 15000));
		assert_int_equal(th_count_in_log(log, "msg=\"started\""), 0);
		ws = th_stop(p, SIGTERM, 15000);
		assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
	server_stop(&tls);
}

/* The server verifies client certificates: an actor connects with
 * VOX_NATS_TLS_CERT/KEY, and is refused without them. */
static void test_tls_client_certs(void **state)
{
	fixture *f = *state;
	char dir[700], ca[800], cert[800], key[800], ccert[800], ckey[800], log[800];
	snprintf(dir, sizeof(dir), "%s/mtls", f->dir);
	mkdir(dir, 0700);
	make_certs(dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cert, sizeof(cert), "%s/server.pem", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	snprintf(ccert, sizeof(ccert), "%s/client.pem", dir);
	snprintf(ckey, sizeof(ckey), "%s/client.key", dir);
	server tls;
	server_start(f, &tls, "mtls", cert, key, ca);

	natsConnection *nc = NULL, *bad = NULL;
	assert_int_not_equal(connect_as(tls.url, "internal", f->pw[U_INTERNAL], ca, &bad),
			     NATS_OK);
	assert_null(bad);
	assert_int_equal(connect_tls(tls.url, "internal", f->pw[U_INTERNAL], ca, ccert,
				     ckey, &nc), NATS_OK);

	snprintf(log, sizeof(log), "%s/vox-vault-mtls.log", f->dir);
	pid_t p = spawn_actor_tls(f, 3, tls.url, ca, ccert, ckey, log);
	th_wait_started(&p, "vox-vault", log, 300);
	th_reply r;
	assert_int_equal(request(nc, "credentials.list." ORG_B, NULL, &r), NATS_OK);
	assert_string_equal(r.code, "");
	th_reply_free(&r);
	int ws = th_stop(p, SIGTERM, 15000);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	natsConnection_Destroy(nc);

	snprintf(log, sizeof(log), "%s/vox-vault-mtls-refused.log", f->dir);
	p = spawn_actor(f, 3, tls.url, ca, log);
	assert_true(wait_log(log, "nats connect:", 15000));
	assert_int_equal(th_count_in_log(log, "msg=\"started\""), 0);
	ws = th_stop(p, SIGTERM, 15000);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	server_stop(&tls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_actors_work),
		cmocka_unit_test(test_tenant_denials),
		cmocka_unit_test(test_bridge_denials),
		cmocka_unit_test(test_inboxes_are_private),
		cmocka_unit_test(test_actors_cannot_change_streams),
		cmocka_unit_test(test_alerts_denials),
		cmocka_unit_test(test_service_denials),
		cmocka_unit_test(test_authentication),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_tls_client_certs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
