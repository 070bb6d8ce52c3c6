/* Unit tests of core/stream_check.c: which stream differences drop data.
 * Every rule is driven both ways (the difference that drops data, and its
 * harmless opposite). And the table of io/streams.c: the streams vox wants
 * from the VOX_STREAM_* settings, read without the rest of an actor's
 * configuration. */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/stream_check.h"
#include "io/streams.h"

#define H (INT64_C(3600) * 1000000000)
#define S INT64_C(1000000000)

static const char *const ours[] = {"call.*.*", "payment.*.*", "lead.*.*"};

/* EVENTS as the defaults want it. */
static vox_stream_spec wanted(void)
{
	vox_stream_spec w;
	memset(&w, 0, sizeof(w));
	w.name = "EVENTS";
	w.subjects = ours;
	w.nsubjects = 3;
	w.storage = VOX_STREAM_FILE;
	w.retention = VOX_RETAIN_LIMITS;
	w.replicas = 1;
	w.max_age_ns = 168 * H;
	w.max_bytes = -1;
	w.max_msgs = -1;
	w.max_msgs_per_subject = -1;
	w.max_msg_size = 1024 * 1024;
	w.duplicates_ns = 120 * S;
	return w;
}

/* found differs from the default in exactly one setting: it is reported
 * once, with that name, severity and values. */
static void expect_one(const vox_stream_spec *found, const char *setting,
		       vox_stream_severity sev, const char *f, const char *w)
{
	vox_stream_spec want = wanted();
	vox_stream_diff d[VOX_STREAM_SETTINGS];
	size_t n = vox_stream_compare(d, found, &want);
	if (n != 1)
		fail_msg("%zu differences for %s (first: %s)", n, setting,
			 n ? d[0].setting : "-");
	assert_string_equal(d[0].setting, setting);
	assert_int_equal(d[0].severity, sev);
	assert_string_equal(d[0].found, f);
	assert_string_equal(d[0].wanted, w);
	assert_non_null(d[0].why);
	assert_int_equal(vox_stream_diffs_drop(d, n), sev == VOX_STREAM_DROPS);
}

static void test_the_wanted_stream_has_no_difference(void **state)
{
	(void)state;
	vox_stream_spec f = wanted(), w = wanted();
	vox_stream_diff d[VOX_STREAM_SETTINGS];
	assert_int_equal(vox_stream_compare(d, &f, &w), 0);
	/* the same subjects in another order are the same */
	static const char *const shuffled[] = {"lead.*.*", "call.*.*", "payment.*.*"};
	f.subjects = shuffled;
	assert_int_equal(vox_stream_compare(d, &f, &w), 0);
	/* 0 replicas is the server's default of 1; 0 and -1 are both no limit */
	f.replicas = 0;
	f.max_bytes = 0;
	f.max_msgs_per_subject = 0;
	assert_int_equal(vox_stream_compare(d, &f, &w), 0);
}

static void test_subjects(void **state)
{
	(void)state;
	vox_stream_spec f = wanted();
	static const char *const two[] = {"call.*.*", "lead.*.*"};
	f.subjects = two;
	f.nsubjects = 2;
	expect_one(&f, "subjects", VOX_STREAM_DROPS, "call.*.*,lead.*.*",
		   "call.*.*,payment.*.*,lead.*.*");
	/* too narrow a pattern covers only some of ours */
	static const char *const narrow[] = {"call.ended.*", "payment.*.*", "lead.*.*"};
	f.subjects = narrow;
	f.nsubjects = 3;
	expect_one(&f, "subjects", VOX_STREAM_DROPS,
		   "call.ended.*,payment.*.*,lead.*.*",
		   "call.*.*,payment.*.*,lead.*.*");
	/* wider patterns, or more subjects, keep everything: a warning */
	static const char *const wide[] = {"call.>", "payment.>", "lead.*.*"};
	f.subjects = wide;
	expect_one(&f, "subjects", VOX_STREAM_WARN, "call.>,payment.>,lead.*.*",
		   "call.*.*,payment.*.*,lead.*.*");
	static const char *const more[] = {"call.*.*", "payment.*.*", "lead.*.*",
					   "other.>"};
	f.subjects = more;
	f.nsubjects = 4;
	expect_one(&f, "subjects", VOX_STREAM_WARN,
		   "call.*.*,payment.*.*,lead.*.*,other.>",
		   "call.*.*,payment.*.*,lead.*.*");
	/* a stream without subjects (a mirror) stores none of ours */
	f.nsubjects = 0;
	expect_one(&f, "subjects", VOX_STREAM_DROPS, "(none)",
		   "call.*.*,payment.*.*,lead.*.*");
}

static void test_subject_coverage(void **state)
{
	(void)state;
	assert_true(vox_stream_subject_covers("call.*.*", "call.*.*"));
	assert_true(vox_stream_subject_covers("call.>", "call.*.*"));
	assert_true(vox_stream_subject_covers(">", "call.*.*"));
	assert_true(vox_stream_subject_covers("*.*.*", "lead.*.*"));
	assert_true(vox_stream_subject_covers("call.*.*", "call.ended.org1"));
	assert_true(vox_stream_subject_covers("alert.>", "alert.>"));
	assert_true(vox_stream_subject_covers("alert.>", "alert.hot_lead.*"));
	assert_false(vox_stream_subject_covers("call.*", "call.*.*"));
	assert_false(vox_stream_subject_covers("call.*.*.*", "call.*.*"));
	assert_false(vox_stream_subject_covers("call.ended.*", "call.*.*"));
	assert_false(vox_stream_subject_covers("call.*.*", "call.>"));
	assert_false(vox_stream_subject_covers("alert.*", "alert.>"));
	assert_false(vox_stream_subject_covers("call.*.*", "lead.*.*"));
	assert_false(vox_stream_subject_covers("call.>", "call"));
	assert_false(vox_stream_subject_covers("calls.*.*", "call.*.*"));
}

static void test_storage_and_retention(void **state)
{
	(void)state;
	vox_stream_spec f = wanted();
	f.storage = VOX_STREAM_MEMORY;
	expect_one(&f, "storage", VOX_STREAM_DROPS, "memory", "file");
	f = wanted();
	f.retention = VOX_RETAIN_INTEREST;
	expect_one(&f, "retention", VOX_STREAM_DROPS, "interest", "limits");
	f.retention = VOX_RETAIN_WORKQUEUE;
	expect_one(&f, "retention", VOX_STREAM_DROPS, "workqueue", "limits");
	/* the other way round (an update from such a stream to ours) keeps
	 * more: a warning */
	vox_stream_spec was = wanted(), want = wanted();
	vox_stream_diff d[VOX_STREAM_SETTINGS];
	was.storage = VOX_STREAM_MEMORY;
	was.retention = VOX_RETAIN_INTEREST;
	size_t n = vox_stream_compare(d, &want, &was);
	assert_int_equal(n, 2);
	assert_false(vox_stream_diffs_drop(d, n));
}

static void test_replicas(void **state)
{
	(void)state;
	vox_stream_spec f = wanted(), w = wanted();
	vox_stream_diff d[VOX_STREAM_SETTINGS];
	w.replicas = 3;
	f.replicas = 1;
	size_t n = vox_stream_compare(d, &f, &w);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].setting, "replicas");
	assert_int_equal(d[0].severity, VOX_STREAM_DROPS);
	assert_string_equal(d[0].found, "1");
	assert_string_equal(d[0].wanted, "3");
	f.replicas = 3;
	expect_one(&f, "replicas", VOX_STREAM_WARN, "3", "1");
}

static void test_limits(void **state)
{
	(void)state;
	vox_stream_spec f = wanted();
	/* shorter retention than configured: drops; longer or none: warns */
	f.max_age_ns = 1 * H;
	expect_one(&f, "max_age", VOX_STREAM_DROPS, "1h", "168h");
	f.max_age_ns = 336 * H;
	expect_one(&f, "max_age", VOX_STREAM_WARN, "336h", "168h");
	f.max_age_ns = 0;
	expect_one(&f, "max_age", VOX_STREAM_WARN, "unlimited", "168h");
	/* a limit where none is wanted */
	f = wanted();
	f.max_bytes = 1024;
	expect_one(&f, "max_bytes", VOX_STREAM_DROPS, "1024", "unlimited");
	f = wanted();
	f.max_msgs = 1000;
	expect_one(&f, "max_msgs", VOX_STREAM_DROPS, "1000", "unlimited");
	f = wanted();
	f.max_msgs_per_subject = 1;
	expect_one(&f, "max_msgs_per_subject", VOX_STREAM_DROPS, "1", "unlimited");
	/* a smaller size limit than wanted, and a larger one */
	vox_stream_spec w = wanted();
	vox_stream_diff d[VOX_STREAM_SETTINGS];
	w.max_bytes = 100 * 1024 * 1024;
	f = wanted();
	f.max_bytes = 50 * 1024 * 1024;
	assert_int_equal(vox_stream_compare(d, &f, &w), 1);
	assert_int_equal(d[0].severity, VOX_STREAM_DROPS);
	f.max_bytes = 200 * 1024 * 1024;
	assert_int_equal(vox_stream_compare(d, &f, &w), 1);
	assert_int_equal(d[0].severity, VOX_STREAM_WARN);
	f.max_bytes = -1;
	assert_int_equal(vox_stream_compare(d, &f, &w), 1);
	assert_int_equal(d[0].severity, VOX_STREAM_WARN);
	assert_string_equal(d[0].found, "unlimited");
	/* message size: below the contract's limit refuses our messages */
	f = wanted();
	f.max_msg_size = 64 * 1024;
	expect_one(&f, "max_msg_size", VOX_STREAM_DROPS, "65536", "1048576");
	f.max_msg_size = -1;
	expect_one(&f, "max_msg_size", VOX_STREAM_WARN, "unlimited", "1048576");
	f.max_msg_size = 8 * 1024 * 1024;
	expect_one(&f, "max_msg_size", VOX_STREAM_WARN, "8388608", "1048576");
}

static void test_what_drops_nothing(void **state)
{
	(void)state;
	vox_stream_spec f = wanted();
	f.discard_new = true;
	expect_one(&f, "discard", VOX_STREAM_WARN, "new", "old");
	f = wanted();
	f.duplicates_ns = 60 * S;
	expect_one(&f, "duplicate_window", VOX_STREAM_WARN, "60s", "120s");
	f.duplicates_ns = 10 * 60 * S;
	expect_one(&f, "duplicate_window", VOX_STREAM_WARN, "600s", "120s");
	f = wanted();
	f.sealed = true;
	expect_one(&f, "sealed", VOX_STREAM_WARN, "true", "false");
	f = wanted();
	f.no_ack = true;
	expect_one(&f, "no_ack", VOX_STREAM_WARN, "true", "false");
}

static void test_every_difference_at_once(void **state)
{
	(void)state;
	static const char *const other[] = {"x.>"};
	vox_stream_spec f = wanted(), w = wanted();
	vox_stream_diff d[VOX_STREAM_SETTINGS];
	f.subjects = other;
	f.nsubjects = 1;
	f.storage = VOX_STREAM_MEMORY;
	f.retention = VOX_RETAIN_WORKQUEUE;
	f.replicas = 3;
	f.max_age_ns = 1 * H;
	f.max_bytes = 1;
	f.max_msgs = 1;
	f.max_msgs_per_subject = 1;
	f.max_msg_size = 1;
	f.discard_new = true;
	f.duplicates_ns = S;
	f.sealed = true;
	f.no_ack = true;
	size_t n = vox_stream_compare(d, &f, &w);
	assert_int_equal(n, VOX_STREAM_SETTINGS);
	static const char *const order[] = {
		"subjects", "storage", "retention", "replicas", "max_age",
		"max_bytes", "max_msgs", "max_msgs_per_subject", "max_msg_size",
		"discard", "duplicate_window", "sealed", "no_ack"};
	for (size_t i = 0; i < n; i++)
		assert_string_equal(d[i].setting, order[i]);
	assert_true(vox_stream_diffs_drop(d, n));
}

static void test_durations(void **state)
{
	(void)state;
	char b[32];
	vox_stream_format_duration(b, sizeof(b), 0);
	assert_string_equal(b, "unlimited");
	vox_stream_format_duration(b, sizeof(b), -1);
	assert_string_equal(b, "unlimited");
	vox_stream_format_duration(b, sizeof(b), 720 * H);
	assert_string_equal(b, "720h");
	vox_stream_format_duration(b, sizeof(b), 90 * 60 * S);
	assert_string_equal(b, "5400s");
	vox_stream_format_duration(b, sizeof(b), 61 * S);
	assert_string_equal(b, "61s");
	vox_stream_format_duration(b, sizeof(b), 1500000000);
	assert_string_equal(b, "1500ms");
	assert_string_equal(vox_stream_severity_name(VOX_STREAM_DROPS), "drops_data");
	assert_string_equal(vox_stream_severity_name(VOX_STREAM_WARN), "warning");
}

static const char *fake_env(const char *name, void *ctx)
{
	const char *const *kv = ctx;
	for (size_t i = 0; kv[i]; i += 2)
		if (strcmp(kv[i], name) == 0)
			return kv[i + 1];
	return NULL;
}

static void test_the_wanted_streams_from_the_settings(void **state)
{
	(void)state;
	/* only the stream variables are read: a bad VOX_BATCH (an actor's
	 * business) does not stop voxctl streams */
	const char *env[] = {"VOX_STREAM_MAX_AGE_H", "2", "VOX_STREAM_MAX_MB", "10",
			     "VOX_BATCH", "nonsense", NULL};
	vox_runtime_config c;
	vox_buf errors;
	memset(&c, 0, sizeof(c));
	vox_buf_init(&errors);
	assert_int_equal(vox_streams_config_parse(&c, fake_env, env, &errors), VOX_OK);
	assert_int_equal(c.batch, 0);
	vox_stream_spec w;
	const char *names[] = {"EVENTS", "ALERTS", "DLQ"};
	for (size_t i = 0; i < VOX_STREAMS_COUNT; i++) {
		vox_streams_wanted(&w, i, &c);
		assert_string_equal(w.name, names[i]);
		assert_int_equal(w.storage, VOX_STREAM_FILE);
		assert_int_equal(w.retention, VOX_RETAIN_LIMITS);
		assert_int_equal(w.replicas, 1);
		assert_true(w.max_age_ns == (i == 2 ? 720 : 2) * H);
		assert_int_equal(w.max_bytes, 10 * 1024 * 1024);
		assert_true(w.duplicates_ns == 120 * S);
		assert_int_equal(w.max_msg_size, 1024 * 1024);
		assert_false(w.discard_new);
		/* the wanted stream is what it wants */
		vox_stream_diff d[VOX_STREAM_SETTINGS];
		assert_int_equal(vox_stream_compare(d, &w, &w), 0);
	}
	vox_streams_wanted(&w, 0, &c);
	assert_int_equal(w.nsubjects, 3);
	assert_string_equal(w.subjects[1], "payment.*.*");
	vox_streams_wanted(&w, 1, &c);
	assert_string_equal(w.subjects[0], "alert.>");
	vox_streams_wanted(&w, 2, &c);
	assert_string_equal(w.subjects[0], "dlq.>");

	/* a bad stream setting is named */
	const char *bad[] = {"VOX_DUPLICATE_WINDOW_S", "0", "VOX_STREAM_REPLICAS", "9",
			     NULL};
	vox_buf_reset(&errors);
	assert_int_equal(vox_streams_config_parse(&c, fake_env, bad, &errors),
			 VOX_E_CONFIG);
	assert_non_null(strstr(errors.data, "VOX_DUPLICATE_WINDOW_S"));
	assert_non_null(strstr(errors.data, "VOX_STREAM_REPLICAS"));
	vox_buf_release(&errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_wanted_stream_has_no_difference),
		cmocka_unit_test(test_subjects),
		cmocka_unit_test(test_subject_coverage),
		cmocka_unit_test(test_storage_and_retention),
		cmocka_unit_test(test_replicas),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_what_drops_nothing),
		cmocka_unit_test(test_every_difference_at_once),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_the_wanted_streams_from_the_settings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
