/*
 * Integration: every actor binary starts against the private servers,
 * announces itself with the services protocol ($SRV.PING/INFO/STATS on the
 * subjects ADR-32 defines), and stops cleanly with exit 0 on SIGTERM and on
 * SIGINT. Bad configuration exits 2 naming every bad variable.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>

#include "core/json.h"
#include "harness.h"

static const char *actors[] = {"vox-calls", "vox-billing", "vox-leads",
			       "vox-vault", "vox-query"};

/* vox-vault needs a key ring; the others ignore it. A fixed test key. */
static char vault_keys[] = "VOX_VAULT_KEYS=1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
static char *const actor_env[] = {vault_keys, NULL};

/* The environment of one actor: vox-query reads as its own role. */
static char *const *env_for(const char *name)
{
	static char query_dsn[1024];
	static char *query_env[] = {query_dsn, NULL};
	if (strcmp(name, "vox-query") != 0)
		return actor_env;
	snprintf(query_dsn, sizeof(query_dsn), "VOX_PG_DSN=%s",
		 th_env("VOX_PG_QUERY_DSN"));
	return query_env;
}

/* Request subj until a reply comes or about 10 s pass. */
static natsMsg *request_retry(natsConnection *nc, const char *subj)
{
	natsMsg *reply = NULL;
	for (int i = 0; i < 100; i++) {
		if (natsConnection_RequestString(&reply, nc, subj, "", 100) == NATS_OK)
			return reply;
		th_sleep_ms(100);
	}
	return NULL;
}

/* Extract the string value of "key" from a flat JSON object (test use). */
static bool json_str(const char *json, const char *key, char *out, size_t n)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	const char *p = strstr(json, pat);
	if (!p)
		return false;
	p += strlen(pat);
	size_t len = strcspn(p, "\"");
	snprintf(out, n, "%.*s", (int)len, p);
	return true;
}

static void check_actor(const char *name, int sig)
{
	natsConnection *nc = NULL;
	char subj[128], id[64], type[64], got[64];
	char log[256];
	snprintf(log, sizeof(log), "%s/%s.log", th_env("VOX_TEST_TMP"), name);
	pid_t pid = th_spawn(name, env_for(name), log);

	assert_int_equal(natsConnection_ConnectTo(&nc, th_env("VOX_NATS_URL")),
			 NATS_OK);
	snprintf(subj, sizeof(subj), "$SRV.PING.%s", name);
	natsMsg *m = request_retry(nc, subj);
	assert_non_null(m);
	const char *ping = natsMsg_GetData(m);
	assert_true(json_str(ping, "type", type, sizeof(type)));
	assert_string_equal(type, "io.nats.micro.v1.ping_response");
	assert_true(json_str(ping, "name", got, sizeof(got)));
	assert_string_equal(got, name);
	assert_true(json_str(ping, "id", id, sizeof(id)));
	assert_int_equal(strlen(id), 22);
	assert_true(json_str(ping, "version", got, sizeof(got)));
	assert_string_equal(got, VOX_VERSION);
	natsMsg_Destroy(m);

	/* The instance also answers on its own id, for INFO and STATS. */
	snprintf(subj, sizeof(subj), "$SRV.INFO.%s.%s", name, id);
	m = request_retry(nc, subj);
	assert_non_null(m);
	assert_true(json_str(natsMsg_GetData(m), "type", type, sizeof(type)));
	assert_string_equal(type, "io.nats.micro.v1.info_response");
	assert_non_null(strstr(natsMsg_GetData(m), "\"description\":\""));
	assert_non_null(strstr(natsMsg_GetData(m), "\"endpoints\":["));
	natsMsg_Destroy(m);
	snprintf(subj, sizeof(subj), "$SRV.STATS.%s.%s", name, id);
	m = request_retry(nc, subj);
	assert_non_null(m);
	assert_true(json_str(natsMsg_GetData(m), "type", type, sizeof(type)));
	assert_string_equal(type, "io.nats.micro.v1.stats_response");
	assert_true(json_str(natsMsg_GetData(m), "started", got, sizeof(got)));
	assert_int_equal(got[4], '-');
	natsMsg_Destroy(m);

	int ws = th_stop(pid, sig, 10000);
	assert_int_not_equal(ws, -1);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);

	/* Gone from the service list once stopped. */
	snprintf(subj, sizeof(subj), "$SRV.PING.%s.%s", name, id);
	assert_int_not_equal(natsConnection_RequestString(&m, nc, subj, "", 300),
			     NATS_OK);
	natsConnection_Destroy(nc);
}

static void test_each_actor_announces_and_stops_on_sigterm(void **state)
{
	(void)state;
	for (size_t i = 0; i < VOX_NELEM(actors); i++)
		check_actor(actors[i], SIGTERM);
}

static void test_sigint_also_stops_cleanly(void **state)
{
	(void)state;
	check_actor("vox-billing", SIGINT);
}

static void test_all_instances_answer_a_ping(void **state)
{
	(void)state;
	pid_t pids[VOX_NELEM(actors)];
	char log[256];
	for (size_t i = 0; i < VOX_NELEM(actors); i++) {
		snprintf(log, sizeof(log), "%s/%s.log", th_env("VOX_TEST_TMP"),
			 actors[i]);
		pids[i] = th_spawn(actors[i], env_for(actors[i]), log);
	}
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsMsg *m = NULL;
	assert_int_equal(natsConnection_ConnectTo(&nc, th_env("VOX_NATS_URL")),
			 NATS_OK);
	/* Every instance answers $SRV.PING: wait until all five are up, then
	 * count the replies to a single request. */
	int seen = 0;
	for (int attempt = 0; attempt < 50 && seen < 5; attempt++) {
		seen = 0;
		assert_int_equal(natsConnection_SubscribeSync(&sub, nc, "_T.ping"),
				 NATS_OK);
		assert_int_equal(natsConnection_PublishRequestString(nc, "$SRV.PING",
				 "_T.ping", ""), NATS_OK);
		while (natsSubscription_NextMsg(&m, sub, 300) == NATS_OK) {
			seen++;
			natsMsg_Destroy(m);
		}
		natsSubscription_Destroy(sub);
		if (seen < 5)
			th_sleep_ms(100);
	}
	assert_int_equal(seen, 5);
	natsConnection_Destroy(nc);
	for (size_t i = 0; i < VOX_NELEM(actors); i++) {
		int ws = th_stop(pids[i], SIGTERM, 10000);
		assert_true(WIFEXITED(ws));
		assert_int_equal(WEXITSTATUS(ws), 0);
	}
}

/* VOX_LOG_FORMAT=json, and stderr made the journal's stream (its device
 * and inode in JOURNAL_STREAM, as systemd sets them): every line the
 * actor writes is "<priority>" and one JSON object, the startup lines at
 * info (6), and a bad VOX_LOG_FORMAT is refused by name. */
static void test_json_logs_to_the_journal(void **state)
{
	(void)state;
	char log[256], js[96], line[4096];
	snprintf(log, sizeof(log), "%s/vox-leads-json.log", th_env("VOX_TEST_TMP"));
	FILE *f = fopen(log, "w");
	assert_non_null(f);
	fclose(f);
	struct stat st;
	assert_int_equal(stat(log, &st), 0);
	snprintf(js, sizeof(js), "JOURNAL_STREAM=%llu:%llu",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	static char fmt[] = "VOX_LOG_FORMAT=json";
	char *env[] = {fmt, js, NULL};
	pid_t pid = th_spawn("vox-leads", env, log);
	th_wait_started(&pid, "vox-leads", log, 100);
	assert_true(WIFEXITED(th_stop(pid, SIGTERM, 10000)));
	f = fopen(log, "r");
	assert_non_null(f);
	int lines = 0, infos = 0;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		assert_true(n > 4 && line[n - 1] == '\n');
		assert_int_equal(line[0], '<');
		assert_int_equal(line[2], '>');
		assert_true(strchr("3467", line[1]) != NULL);
		vox_json *j = vox_json_parse(line + 3, n - 4, NULL);
		if (!j)
			fail_msg("not JSON: %s", line);
		const char *level = vox_json_str(vox_json_get(j, "level"));
		assert_non_null(level);
		int want = strcmp(level, "info") == 0 ? '6'
			   : strcmp(level, "warn") == 0 ? '4'
			   : strcmp(level, "error") == 0 ? '3' : '7';
		assert_int_equal(line[1], want);
		assert_string_equal(vox_json_str(vox_json_get(j, "actor")), "vox-leads");
		infos += line[1] == '6';
		lines++;
		vox_json_free(j);
	}
	fclose(f);
	assert_true(lines >= 2);
	assert_true(infos >= 1);

	static char bad[] = "VOX_LOG_FORMAT=yaml";
	char *const bad_env[] = {bad, NULL};
	th_run_result r;
	const char *argv[] = {"vox-leads", NULL};
	th_run("vox-leads", argv, bad_env, NULL, 10000, &r);
	th_run_expect(&r, 2, "VOX_LOG_FORMAT: must be one of logfmt|json");
	th_run_release(&r);
}

/* A nats-server without JetStream (Debian's, on the default port, is
 * one): voxctl says so, naming the server, and a consuming actor waits
 * for one, saying the same, instead of failing on "no responders". */
static void test_a_server_without_jetstream_is_named(void **state)
{
	(void)state;
	char port[16], url[64], log[256], nlog[256];
	int p = th_free_port();
	snprintf(port, sizeof(port), "%d", p);
	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", p);
	snprintf(nlog, sizeof(nlog), "%s/nats-nojs.log", th_env("VOX_TEST_TMP"));
	pid_t srv = fork();
	assert_true(srv >= 0);
	if (srv == 0) {
		execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port,
		       "-l", nlog, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !th_port_open(p); i++)
		th_sleep_ms(50);
	assert_true(th_port_open(p));

	char env_url[96];
	snprintf(env_url, sizeof(env_url), "VOX_NATS_URL=%s", url);
	char *env[] = {env_url, NULL};
	th_run_result r;
	const char *argv[] = {"voxctl", "streams", "status", NULL};
	th_run("voxctl", argv, env, NULL, 20000, &r);
	th_run_expect(&r, 3, "has no JetStream");
	assert_non_null(strstr(r.err.data, url));
	th_run_release(&r);

	snprintf(log, sizeof(log), "%s/vox-calls-nojs.log", th_env("VOX_TEST_TMP"));
	pid_t pid = th_spawn("vox-calls", env, log);
	int found = 0;
	for (int i = 0; i < 100 && !found; i++) {
		th_sleep_ms(100);
		found = th_count_in_log(log, "has no JetStream");
	}
	assert_true(th_alive(pid)); /* waiting, not gone */
	assert_true(WIFEXITED(th_stop(pid, SIGTERM, 10000)));
	assert_true(found > 0);
	assert_int_equal(th_count_in_log(log, "no responders"), 0);
	th_stop(srv, SIGTERM, 5000);
}

static void test_bad_config_exits_2_naming_each_variable(void **state)
{
	(void)state;
	char cmd[1024], out[2048] = "";
	snprintf(cmd, sizeof(cmd),
		 "env -u VOX_PG_DSN VOX_LOG_LEVEL=loud %s 2>&1; echo exit=$?",
		 th_bin("vox-calls"));
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	pclose(p);
	assert_non_null(strstr(out, "VOX_PG_DSN: required"));
	assert_non_null(strstr(out, "VOX_LOG_LEVEL: must be one of"));
	assert_non_null(strstr(out, "exit=2"));
}

static void test_help_lists_the_environment(void **state)
{
	(void)state;
	char cmd[1024], out[4096] = "";
	snprintf(cmd, sizeof(cmd), "%s --help; echo exit=$?", th_bin("vox-vault"));
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	pclose(p);
	assert_non_null(strstr(out, "VOX_NATS_URL"));
	assert_non_null(strstr(out, "VOX_PG_DSN"));
	assert_non_null(strstr(out, "exit=0"));
}

/* The streams are the operator's: apply them on the shared server, as
 * `voxctl streams apply` does (an actor only checks them). */
static int setup(void **state)
{
	(void)state;
	th_streams_apply(th_env("VOX_NATS_URL"), NULL);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_actor_announces_and_stops_on_sigterm),
		cmocka_unit_test(test_sigint_also_stops_cleanly),
		cmocka_unit_test(test_all_instances_answer_a_ping),
		cmocka_unit_test(test_json_logs_to_the_journal),
		cmocka_unit_test(test_a_server_without_jetstream_is_named),
		cmocka_unit_test(test_bad_config_exits_2_naming_each_variable),
		cmocka_unit_test(test_help_lists_the_environment),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
