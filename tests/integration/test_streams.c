/*
 * Integration: the streams belong to the operator. Against a real
 * nats-server started without streams, and vox-calls as the consuming
 * actor:
 *   - an actor waits for a missing stream (logged once, naming
 *     `voxctl streams apply`), creates none itself, and starts once the
 *     operator applied them;
 *   - an actor refuses to start (exit 1, one line naming the stream, the
 *     setting, the value found and the value wanted) on a stream with
 *     memory storage, and on one with a shorter max age than configured;
 *   - an actor starts, with a warning, on a shorter duplicate window;
 *   - `voxctl streams apply` creates the three streams, is idempotent,
 *     updates a changed setting without losing a message, refuses an
 *     update that would drop data unless --force; `voxctl streams status`
 *     says what matches.
 * That an actor's NATS user cannot create or update a stream is proven at
 * the server by test_security.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define H (INT64_C(3600) * 1000000000)
#define S INT64_C(1000000000)

static const char *const stream_names[] = {"EVENTS", "ALERTS", "DLQ"};

typedef struct fixture {
	th_nats nats;
	char dsn[512];
	char env_url[128];
	char env_dsn[600];
	natsConnection *nc;
	jsCtx *js;
	pid_t actor;
	char log[600];
	int runs;
} fixture;

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	*state = f;
	th_nats_start_empty(&f->nats);
	th_pg_migrated_db("streams", f->dsn, sizeof(f->dsn));
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->dsn);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 5000;
	th_js_connect(f->nats.url, &jo, &f->nc, &f->js);
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	if (f->actor > 0)
		th_stop(f->actor, SIGKILL, 5000);
	jsCtx_Destroy(f->js);
	natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	free(f);
	return 0;
}

/* Each test starts from a server without streams. */
static int no_streams(void **state)
{
	fixture *f = *state;
	for (size_t i = 0; i < VOX_NELEM(stream_names); i++)
		js_DeleteStream(f->js, stream_names[i], NULL, NULL);
	for (size_t i = 0; i < VOX_NELEM(stream_names); i++)
		assert_int_equal(th_stream_count(f->js, stream_names[i]), -1);
	return 0;
}

/* voxctl streams <args> with extra environment (NULL-ended, may be NULL). */
static void voxctl_streams(fixture *f, const char *const args[],
			   char *const extra[], th_run_result *r)
{
	char *env[8];
	size_t k = 0;
	env[k++] = f->env_url;
	for (size_t i = 0; extra && extra[i] && k < VOX_NELEM(env) - 1; i++)
		env[k++] = extra[i];
	env[k] = NULL;
	const char *argv[12] = {"voxctl", "streams"};
	size_t n = 2;
	for (size_t i = 0; args[i] && n < VOX_NELEM(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	th_run("voxctl", argv, env, NULL, 30000, r);
}

static void apply_ok(fixture *f, char *const extra[])
{
	const char *args[] = {"apply", NULL};
	th_run_result r;
	voxctl_streams(f, args, extra, &r);
	th_run_expect(&r, 0, NULL);
	th_run_release(&r);
}

/* vox-calls on the test's server, with the default stream settings. */
static void spawn_calls(fixture *f)
{
	char e_fetch[] = "VOX_FETCH_WAIT_MS=200";
	char *env[] = {f->env_url, f->env_dsn, e_fetch, NULL};
	snprintf(f->log, sizeof(f->log), "%s/streams-calls-%ld-%d.log",
		 th_env("VOX_TEST_TMP"), (long)getpid(), f->runs++);
	unlink(f->log);
	f->actor = th_spawn("vox-calls", env, f->log);
}

/* Wait up to ms for the actor to exit on its own: its exit code, or -1
 * (and it is killed) if it did not. */
static int wait_exit(fixture *f, long ms)
{
	/* signal 0 sends nothing: th_stop only waits */
	int ws = th_stop(f->actor, 0, ms);
	f->actor = 0;
	if (ws == -1 || !WIFEXITED(ws))
		return -1;
	return WEXITSTATUS(ws);
}

static void stop_calls(fixture *f)
{
	int ws = th_stop(f->actor, SIGTERM, 15000);
	f->actor = 0;
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
}

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

/* Replace stream name with one made by hand (as a careless operator
 * might), otherwise as vox wants it. */
static void put_stream_by_hand(fixture *f, const char *name,
			       jsStorageType storage, int64_t max_age)
{
	const char *subjects[] = {"call.*.*", "payment.*.*", "lead.*.*"};
	jsStreamConfig cfg;
	jsStreamInfo *si = NULL;
	js_DeleteStream(f->js, name, NULL, NULL);
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 3;
	cfg.Storage = storage;
	cfg.MaxAge = max_age;
	cfg.MaxMsgSize = 1024 * 1024;
	cfg.Duplicates = 120 * S;
	assert_int_equal(js_AddStream(&si, f->js, &cfg, NULL, NULL), NATS_OK);
	jsStreamInfo_Destroy(si);
}

static jsStreamConfig *info(fixture *f, const char *name, jsStreamInfo **si)
{
	*si = NULL;
	assert_int_equal(js_GetStreamInfo(si, f->js, name, NULL, NULL), NATS_OK);
	return (*si)->Config;
}

/* ---- the actors -------------------------------------------------------- */

static void test_actor_waits_for_a_missing_stream(void **state)
{
	fixture *f = *state;
	spawn_calls(f);
	assert_true(wait_log(f->log, "msg=\"stream missing, waiting for it\"", 15000));
	/* it keeps waiting (several retries) and creates nothing */
	th_sleep_ms(2000);
	assert_true(th_alive(f->actor));
	assert_int_equal(th_count_in_log(f->log, "msg=\"started\""), 0);
	for (size_t i = 0; i < VOX_NELEM(stream_names); i++)
		assert_int_equal(th_stream_count(f->js, stream_names[i]), -1);
	/* logged once, naming the command that fixes it */
	assert_int_equal(th_count_in_log(f->log, "stream missing"), 1);
	assert_int_equal(th_count_in_log(f->log, "fix=\"voxctl streams apply\""), 1);
	assert_int_equal(th_count_in_log(f->log, "level=error"), 0);

	/* the operator applies them: the actor starts by itself */
	const char *args[] = {"apply", NULL};
	th_run_result r;
	voxctl_streams(f, args, NULL, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(th_count_str(r.out.data, "\"action\":\"created\""), 3);
	th_run_release(&r);
	th_wait_started(&f->actor, "vox-calls", f->log, 150);
	assert_int_equal(th_count_in_log(f->log, "msg=\"streams present\""), 1);
	/* and found nothing to warn about */
	assert_int_equal(th_count_in_log(f->log, "stream differs"), 0);
	stop_calls(f);
}

static void test_actor_refuses_memory_storage(void **state)
{
	fixture *f = *state;
	apply_ok(f, NULL);
	put_stream_by_hand(f, "EVENTS", js_MemoryStorage, 168 * H);
	spawn_calls(f);
	int code = wait_exit(f, 20000);
	if (code != 1)
		th_print_tail(f->log, 2048);
	assert_int_equal(code, 1);
	assert_int_equal(th_count_in_log(f->log, "msg=\"started\""), 0);
	/* one line: the stream, the setting, found and wanted */
	assert_int_equal(th_count_in_log(f->log,
		"msg=\"stream would drop data, not starting\""
		" stream=EVENTS setting=storage found=\"memory\" wanted=\"file\""), 1);
	assert_int_equal(th_count_in_log(f->log, "level=error"), 1);
	/* the actor changed nothing */
	jsStreamInfo *si;
	assert_int_equal(info(f, "EVENTS", &si)->Storage, js_MemoryStorage);
	jsStreamInfo_Destroy(si);
}

static void test_actor_refuses_a_shorter_max_age(void **state)
{
	fixture *f = *state;
	apply_ok(f, NULL);
	put_stream_by_hand(f, "EVENTS", js_FileStorage, 1 * H);
	spawn_calls(f);
	int code = wait_exit(f, 20000);
	if (code != 1)
		th_print_tail(f->log, 2048);
	assert_int_equal(code, 1);
	assert_int_equal(th_count_in_log(f->log,
		"stream=EVENTS setting=max_age found=\"1h\" wanted=\"168h\""), 1);
	assert_int_equal(th_count_in_log(f->log, "level=error"), 1);
	assert_int_equal(th_count_in_log(f->log, "msg=\"started\""), 0);
	jsStreamInfo *si;
	assert_true(info(f, "EVENTS", &si)->MaxAge == 1 * H);
	jsStreamInfo_Destroy(si);
}

static void test_actor_warns_on_a_shorter_duplicate_window(void **state)
{
	fixture *f = *state;
	char dup[] = "VOX_DUPLICATE_WINDOW_S=60";
	char *env[] = {dup, NULL};
	apply_ok(f, env);
	spawn_calls(f);
	th_wait_started(&f->actor, "vox-calls", f->log, 150);
	/* each of the three streams, as a warning */
	assert_int_equal(th_count_in_log(f->log,
		"msg=\"stream differs from the configuration\""), 3);
	assert_int_equal(th_count_in_log(f->log,
		"stream=EVENTS setting=duplicate_window found=\"60s\" wanted=\"120s\""), 1);
	assert_int_equal(th_count_in_log(f->log, "level=error"), 0);
	stop_calls(f);
}

/* ---- voxctl streams ------------------------------------------------------ */

static void test_apply_creates_is_idempotent_and_updates(void **state)
{
	fixture *f = *state;
	const char *apply[] = {"apply", NULL};
	const char *status[] = {"status", NULL};
	th_run_result r;

	/* nothing yet: status says so and fails */
	voxctl_streams(f, status, NULL, &r);
	th_run_expect(&r, 1, NULL);
	assert_int_equal(th_count_str(r.out.data, "\"exists\":false"), 3);
	assert_int_equal(th_count_str(r.out.data, "\"fix\":\"voxctl streams apply\""), 3);
	th_run_release(&r);

	voxctl_streams(f, apply, NULL, &r);
	th_run_expect(&r, 0, NULL);
	assert_string_equal(r.out.data,
			    "{\"stream\":\"EVENTS\",\"action\":\"created\"}\n"
			    "{\"stream\":\"ALERTS\",\"action\":\"created\"}\n"
			    "{\"stream\":\"DLQ\",\"action\":\"created\"}\n");
	th_run_release(&r);
	jsStreamInfo *si;
	jsStreamConfig *c = info(f, "EVENTS", &si);
	assert_int_equal(c->SubjectsLen, 3);
	assert_string_equal(c->Subjects[0], "call.*.*");
	assert_int_equal(c->Storage, js_FileStorage);
	assert_int_equal(c->Retention, js_LimitsPolicy);
	assert_true(c->MaxAge == 168 * H);
	assert_true(c->Duplicates == 120 * S);
	assert_int_equal(c->MaxMsgSize, 1024 * 1024);
	jsStreamInfo_Destroy(si);
	c = info(f, "DLQ", &si);
	assert_true(c->MaxAge == 720 * H);
	jsStreamInfo_Destroy(si);

	/* a message in the stream survives what follows */
	th_publish_raw(f->js, "call.started.x", "m", 1, "streams-1");

	/* again: nothing to do */
	voxctl_streams(f, apply, NULL, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(th_count_str(r.out.data, "\"action\":\"unchanged\""), 3);
	th_run_release(&r);
	voxctl_streams(f, status, NULL, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(th_count_str(r.out.data, "\"matches\":true"), 3);
	assert_int_equal(th_count_str(r.out.data, "\"max_age_s\":604800"), 2);
	th_run_release(&r);

	/* a longer retention: EVENTS and ALERTS change, DLQ has its own */
	char longer[] = "VOX_STREAM_MAX_AGE_H=336";
	char *env_longer[] = {longer, NULL};
	voxctl_streams(f, apply, env_longer, &r);
	th_run_expect(&r, 0, NULL);
	assert_string_equal(r.out.data,
		"{\"stream\":\"EVENTS\",\"action\":\"updated\",\"changes\":"
		"[{\"setting\":\"max_age\",\"from\":\"168h\",\"to\":\"336h\"}]}\n"
		"{\"stream\":\"ALERTS\",\"action\":\"updated\",\"changes\":"
		"[{\"setting\":\"max_age\",\"from\":\"168h\",\"to\":\"336h\"}]}\n"
		"{\"stream\":\"DLQ\",\"action\":\"unchanged\"}\n");
	th_run_release(&r);
	c = info(f, "EVENTS", &si);
	assert_true(c->MaxAge == 336 * H);
	assert_int_equal(si->State.Msgs, 1);
	jsStreamInfo_Destroy(si);

	/* status with the old settings: differs, but keeps more (a warning) */
	voxctl_streams(f, status, NULL, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(th_count_str(r.out.data, "\"matches\":false"), 2);
	assert_int_equal(th_count_str(r.out.data, "\"drops_data\":false"), 3);
	assert_int_equal(th_count_str(r.out.data,
		"{\"setting\":\"max_age\",\"found\":\"336h\",\"wanted\":\"168h\","
		"\"severity\":\"warning\""), 2);
	th_run_release(&r);

	/* back to the shorter one would delete what is kept: refused ... */
	voxctl_streams(f, apply, NULL, &r);
	th_run_expect(&r, 1, "changing max_age from 336h to 168h");
	assert_non_null(strstr(r.err.data, "--force"));
	th_run_release(&r);
	c = info(f, "EVENTS", &si);
	assert_true(c->MaxAge == 336 * H);
	jsStreamInfo_Destroy(si);
	/* ... unless forced */
	const char *force[] = {"apply", "--force", NULL};
	voxctl_streams(f, force, NULL, &r);
	th_run_expect(&r, 0, NULL);
	assert_int_equal(th_count_str(r.out.data, "\"action\":\"updated\""), 2);
	th_run_release(&r);
	c = info(f, "EVENTS", &si);
	assert_true(c->MaxAge == 168 * H);
	assert_int_equal(si->State.Msgs, 1);
	jsStreamInfo_Destroy(si);

	/* status names what would drop data, and fails */
	put_stream_by_hand(f, "EVENTS", js_MemoryStorage, 168 * H);
	voxctl_streams(f, status, NULL, &r);
	th_run_expect(&r, 1, NULL);
	assert_int_equal(th_count_str(r.out.data, "\"drops_data\":true"), 1);
	assert_non_null(strstr(r.out.data,
		"{\"setting\":\"storage\",\"found\":\"memory\",\"wanted\":\"file\","
		"\"severity\":\"drops_data\""));
	th_run_release(&r);
}

static void test_apply_bad_settings_and_no_server(void **state)
{
	fixture *f = *state;
	th_run_result r;
	const char *apply[] = {"apply", NULL};
	char bad[] = "VOX_STREAM_REPLICAS=0";
	char *env_bad[] = {bad, NULL};
	voxctl_streams(f, apply, env_bad, &r);
	th_run_expect(&r, 2, "VOX_STREAM_REPLICAS");
	th_run_release(&r);
	/* more replicas than a single server has: the server refuses */
	char three[] = "VOX_STREAM_REPLICAS=3";
	char *env_three[] = {three, NULL};
	voxctl_streams(f, apply, env_three, &r);
	th_run_expect(&r, 1, "stream EVENTS");
	th_run_release(&r);
	assert_int_equal(th_stream_count(f->js, "EVENTS"), -1);
	const char *wrong[] = {"apply", "--fast", NULL};
	voxctl_streams(f, wrong, NULL, &r);
	th_run_expect(&r, 2, "--fast");
	th_run_release(&r);
	/* nobody listening: exit 3, also after waiting a little */
	char nowhere[64];
	snprintf(nowhere, sizeof(nowhere), "nats://127.0.0.1:%d", th_free_port());
	const char *argv[] = {"voxctl", "--server", nowhere, "streams", "apply",
			      "--wait", "1", NULL};
	th_run("voxctl", argv, NULL, NULL, 20000, &r);
	th_run_expect(&r, 3, "retrying");
	th_run_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_actor_waits_for_a_missing_stream, no_streams),
		cmocka_unit_test_setup(test_actor_refuses_memory_storage, no_streams),
		cmocka_unit_test_setup(test_actor_refuses_a_shorter_max_age, no_streams),
		cmocka_unit_test_setup(test_actor_warns_on_a_shorter_duplicate_window,
				       no_streams),
		cmocka_unit_test_setup(test_apply_creates_is_idempotent_and_updates,
				       no_streams),
		cmocka_unit_test_setup(test_apply_bad_settings_and_no_server, no_streams),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
