/*
 * Integration: an actor's HTTP endpoints (VOX_HTTP_ADDR) and its systemd
 * notifications, against a private nats-server, a private database and
 * the shared PostgreSQL cluster.
 *
 * - /metrics moves with the work: a charged call is acked, a call of an
 *   unknown org counts as a dead letter by its reason, a batch lands in
 *   the histograms, a refused billing.authorize counts by endpoint and
 *   reason; the format is Prometheus text.
 * - /readyz follows its servers: 503 naming PostgreSQL while the cluster
 *   is down (and /healthz stays 200: the process is alive; a call waits,
 *   counted as a fault by SQLSTATE class, and is acked after), 503 naming
 *   NATS while the server is down, 200 again after each.
 * - sd_notify: READY=1 once serving, WATCHDOG=1 at half WATCHDOG_USEC,
 *   RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 on SIGTERM, on a
 *   real datagram socket in NOTIFY_SOCKET, as systemd reads them.
 * - A bad VOX_HTTP_ADDR exits 2 naming it; a port in use exits 1.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

typedef struct fixture {
	th_nats nats;
	char dsn[1024];
	char env_nats[128], env_dsn[1100], env_http[64];
	char *env[4];
	int port;
	pid_t pid;
	char log[256];
} fixture;

/* ---- a minimal HTTP/1.0 client ------------------------------------------ */

typedef struct http_reply {
	int status;
	char head[2048];
	vox_buf body;
} http_reply;

/* GET path from 127.0.0.1:port; false when nothing answered. */
static bool http_get(int port, const char *path, http_reply *r)
{
	memset(r, 0, sizeof(*r));
	vox_buf_init(&r->body);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {5, 0};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(s);
		return false;
	}
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
	assert_int_equal(write(s, req, (size_t)n), n);
	vox_buf all;
	vox_buf_init(&all);
	char chunk[4096];
	ssize_t k;
	while ((k = read(s, chunk, sizeof(chunk))) > 0)
		vox_buf_append(&all, chunk, (size_t)k);
	close(s);
	const char *end = all.data ? strstr(all.data, "\r\n\r\n") : NULL;
	bool ok = end && sscanf(all.data, "HTTP/1.%*d %d", &r->status) == 1;
	if (ok) {
		size_t hl = (size_t)(end - all.data);
		snprintf(r->head, sizeof(r->head), "%.*s", (int)hl, all.data);
		vox_buf_append(&r->body, end + 4, all.len - hl - 4);
		vox_buf_putc(&r->body, 0);
		r->body.len--;
	}
	vox_buf_release(&all);
	return ok;
}

static void http_reply_release(http_reply *r)
{
	vox_buf_release(&r->body);
}

/* The value of one sample ("name{labels}" exactly as exposed), -1 when
 * the scrape has no such line. */
static double sample(const char *metrics, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = metrics; p && *p;) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* The sum of every series whose line starts with prefix ("name{"). */
static double family_sum(const char *metrics, const char *prefix)
{
	double sum = 0;
	size_t n = strlen(prefix);
	for (const char *p = metrics; p && *p;) {
		if (strncmp(p, prefix, n) == 0) {
			const char *sp = strchr(p, ' ');
			if (sp)
				sum += strtod(sp + 1, NULL);
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return sum;
}

static double scrape(fixture *f, const char *series)
{
	http_reply r;
	assert_true(http_get(f->port, "/metrics", &r));
	assert_int_equal(r.status, 200);
	double v = sample(r.body.data, series);
	http_reply_release(&r);
	return v;
}

/* Scrape until series reaches at least want (about 15 s). */
static double wait_sample(fixture *f, const char *series, double want)
{
	double v = -1;
	for (int i = 0; i < 150; i++) {
		v = scrape(f, series);
		if (v >= want)
			return v;
		th_sleep_ms(100);
	}
	fail_msg("%s: %g, want at least %g", series, v, want);
	return v;
}

/* GET path until it answers status (about ms); the last reply's body. */
static void wait_status(fixture *f, const char *path, int status, long ms,
			const char *in_body)
{
	http_reply r = {0};
	for (long t = 0; t <= ms; t += 100) {
		if (http_get(f->port, path, &r) && r.status == status &&
		    (!in_body || strstr(r.body.data, in_body))) {
			http_reply_release(&r);
			return;
		}
		http_reply_release(&r);
		th_sleep_ms(100);
	}
	http_get(f->port, path, &r);
	fail_msg("%s: %d '%s', want %d with '%s'", path, r.status,
		 r.body.data ? r.body.data : "", status, in_body ? in_body : "");
}

/* ---- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	th_nats_start(&f->nats);
	th_pg_migrated_db("http", f->dsn, sizeof(f->dsn));
	f->port = th_free_port();
	snprintf(f->env_nats, sizeof(f->env_nats), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->dsn);
	snprintf(f->env_http, sizeof(f->env_http), "VOX_HTTP_ADDR=127.0.0.1:%d",
		 f->port);
	f->env[0] = f->env_nats;
	f->env[1] = f->env_dsn;
	f->env[2] = f->env_http;
	f->env[3] = NULL;
	snprintf(f->log, sizeof(f->log), "%s/http-billing.log",
		 th_env("VOX_TEST_TMP"));
	unlink(f->log); /* th_wait_started reads it from the start */
	f->pid = th_spawn("vox-billing", f->env, f->log);
	th_wait_started(&f->pid, "vox-billing", f->log, 150);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (f->pid > 0)
		assert_true(WIFEXITED(th_stop(f->pid, SIGTERM, 20000)));
	th_nats_stop(&f->nats);
	free(f);
	return 0;
}

/* voxctl and the example bridge with the fixture's servers. */
static void run_ok(fixture *f, const char *bin, const char *const argv[])
{
	th_run_result r;
	th_run(bin, argv, f->env, NULL, 20000, &r);
	th_run_expect(&r, 0, NULL);
	th_run_release(&r);
}

static const char ORG[] = "c0000000-0000-4000-8000-0000000000c1";
static const char STRANGER[] = "c0000000-0000-4000-8000-0000000000c2";

/* ---- tests --------------------------------------------------------------- */

static void test_metrics_move_with_the_work(void **state)
{
	fixture *f = *state;
	http_reply r;
	assert_true(http_get(f->port, "/metrics", &r));
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "text/plain; version=0.0.4"));
	assert_non_null(strstr(r.body.data, "# TYPE vox_batch_apply_seconds histogram\n"));
	assert_non_null(strstr(r.body.data,
			       "vox_build_info{actor=\"vox-billing\",version=\""));
	assert_true(sample(r.body.data, "vox_serving") == 1);
	assert_true(sample(r.body.data, "vox_consumer_lag{input=\"vox-billing-calls\"}") >= 0);
	http_reply_release(&r);

	double acked = scrape(f, "vox_consume_acked_total");
	double batches = scrape(f, "vox_batch_size_count");
	double applies = scrape(f, "vox_batch_apply_seconds_bucket{le=\"+Inf\"}");
	assert_true(acked >= 0 && batches >= 0 && applies == batches);
	/* no dead letter yet: the family has no series */
	assert_true(scrape(f, "vox_dead_letters_total{reason=\"unknown_org\"}") < 0);

	const char *create[] = {"voxctl", "org", "create", "--id", ORG, "--name",
				"Metrics Clinic", "--email", "m@example.com",
				"--balance", "1000", NULL};
	run_ok(f, "voxctl", create);
	const char *call[] = {"vox-example-bridge", ORG, NULL};
	run_ok(f, "vox-example-bridge", call);
	wait_sample(f, "vox_consume_acked_total", acked + 1);
	const char *stranger[] = {"vox-example-bridge", STRANGER, NULL};
	run_ok(f, "vox-example-bridge", stranger);
	wait_sample(f, "vox_dead_letters_total{reason=\"unknown_org\"}", 1);
	assert_true(scrape(f, "vox_batch_size_count") >= batches + 1);
	assert_true(scrape(f, "vox_batch_apply_seconds_count") >= batches + 1);
	assert_true(scrape(f, "vox_batch_apply_seconds_sum") > 0);
	/* the charge's low-balance alert is not due (1000 - 219 > 0 with no
	 * threshold), so nothing waits in the outbox */
	assert_true(scrape(f, "vox_outbox_oldest_unpublished_seconds") >= 0);

	/* a refused request counts by endpoint and reason */
	natsConnection *nc = NULL;
	th_nats_connect(f->nats.url, &nc);
	char subject[96];
	snprintf(subject, sizeof(subject), "billing.authorize.%s", ORG);
	natsMsg *reply = NULL;
	static const char an_array[] = "\x90"; /* a request is a map */
	assert_int_equal(natsConnection_Request(&reply, nc, subject, an_array,
						1, 5000),
			 NATS_OK);
	assert_non_null(natsMsg_GetData(reply));
	natsMsg_Destroy(reply);
	natsConnection_Destroy(nc);
	wait_sample(f, "vox_request_duration_seconds_count{endpoint=\"authorize\"}", 1);
	assert_true(http_get(f->port, "/metrics", &r));
	const char *errs = strstr(r.body.data, "\nvox_request_errors_total{");
	if (sample(r.body.data, "vox_request_errors_total{endpoint=\"authorize\","
				"reason=\"not_a_map\"}") != 1)
		fail_msg("no not_a_map authorize request counted: %.300s",
			 errs ? errs + 1 : "(no series)");
	http_reply_release(&r);

	assert_true(http_get(f->port, "/nowhere", &r));
	assert_int_equal(r.status, 404);
	http_reply_release(&r);
}

static void test_readyz_follows_the_servers(void **state)
{
	fixture *f = *state;
	wait_status(f, "/readyz", 200, 5000, "ready");

	double acked = scrape(f, "vox_consume_acked_total");
	th_pg_stop();
	wait_status(f, "/readyz", 503, 10000, "postgres");
	wait_status(f, "/healthz", 200, 1000, "ok");
	/* a call while the database is down waits: a fault by class */
	const char *call[] = {"vox-example-bridge", ORG, NULL};
	run_ok(f, "vox-example-bridge", call);
	double faults = 0;
	for (int i = 0; i < 150 && faults < 1; i++) {
		http_reply r;
		assert_true(http_get(f->port, "/metrics", &r));
		faults = family_sum(r.body.data, "vox_db_faults_total{class=");
		http_reply_release(&r);
		if (faults < 1)
			th_sleep_ms(100);
	}
	assert_true(faults >= 1);
	assert_true(scrape(f, "vox_consume_acked_total") == acked);
	th_pg_start();
	wait_status(f, "/readyz", 200, 20000, "ready");
	wait_sample(f, "vox_consume_acked_total", acked + 1);

	th_nats_stop(&f->nats);
	wait_status(f, "/readyz", 503, 10000, "nats");
	wait_status(f, "/healthz", 200, 1000, "ok");
	th_nats_restart(&f->nats);
	wait_status(f, "/readyz", 200, 30000, "ready");
	assert_true(scrape(f, "vox_nats_connected{conn=\"consume\"}") == 1);
}

/* ---- systemd notifications ---------------------------------------------- */

/* Read datagrams from s until one contains want (about ms); counts in
 * *watchdogs the WATCHDOG=1 seen meanwhile. */
static bool notified(int s, const char *want, long ms, int *watchdogs)
{
	char msg[512];
	for (long t = 0; t < ms; t += 50) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, 50) != 1)
			continue;
		ssize_t n = recv(s, msg, sizeof(msg) - 1, 0);
		if (n <= 0)
			continue;
		msg[n] = 0;
		if (watchdogs && strstr(msg, "WATCHDOG=1"))
			(*watchdogs)++;
		if (strstr(msg, want))
			return true;
	}
	return false;
}

static void test_sd_notify_ready_watchdog_stopping(void **state)
{
	fixture *f = *state;
	char path[256], sock_env[300], log[256];
	snprintf(path, sizeof(path), "%s/notify.sock", th_env("VOX_TEST_TMP"));
	unlink(path);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	assert_true(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	snprintf(sock_env, sizeof(sock_env), "NOTIFY_SOCKET=%s", path);
	static char wd[] = "WATCHDOG_USEC=400000";
	char *env[] = {f->env_nats, f->env_dsn, sock_env, wd, NULL};
	snprintf(log, sizeof(log), "%s/notify-leads.log", th_env("VOX_TEST_TMP"));
	unlink(log);
	pid_t pid = th_spawn("vox-leads", env, log);

	int watchdogs = 0;
	assert_true(notified(s, "READY=1", 20000, NULL));
	/* every 200 ms: at least 3 in a second and a half */
	assert_false(notified(s, "STOPPING=1", 1500, &watchdogs));
	assert_true(watchdogs >= 3);
	kill(pid, SIGHUP);
	assert_true(notified(s, "RELOADING=1", 5000, NULL));
	assert_true(notified(s, "READY=1", 5000, NULL));
	kill(pid, SIGTERM);
	assert_true(notified(s, "STOPPING=1", 10000, NULL));
	int st = th_stop(pid, SIGTERM, 20000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(s);
	unlink(path);
}

static void test_bad_http_addr_is_refused(void **state)
{
	fixture *f = *state;
	static char bad[] = "VOX_HTTP_ADDR=localhost";
	char *const bad_env[] = {bad, NULL};
	const char *argv[] = {"vox-leads", NULL};
	th_run_result r;
	th_run("vox-leads", argv, bad_env, NULL, 10000, &r);
	th_run_expect(&r, 2, "'localhost' is not host:port");
	th_run_release(&r);

	/* the billing fixture holds f->port */
	char taken[64];
	snprintf(taken, sizeof(taken), "VOX_HTTP_ADDR=127.0.0.1:%d", f->port);
	char *const taken_env[] = {taken, NULL};
	th_run("vox-leads", argv, taken_env, NULL, 10000, &r);
	th_run_expect(&r, 1, "cannot listen on 127.0.0.1:");
	th_run_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_move_with_the_work),
		cmocka_unit_test(test_readyz_follows_the_servers),
		cmocka_unit_test(test_sd_notify_ready_watchdog_stopping),
		cmocka_unit_test(test_bad_http_addr_is_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
