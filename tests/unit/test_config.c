/* Unit tests of the table-driven configuration parser (core/config.c). */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/config.h"

typedef struct cfg {
	const char *url;
	const char *secret;
	int64_t batch;
	bool flag;
	const char *level;
} cfg;

static const vox_cfg_var vars[] = {
	{"T_URL", VOX_CFG_STR, "nats://x", 0, 0, NULL, offsetof(cfg, url), "url"},
	{"T_SECRET", VOX_CFG_SECRET, NULL, 0, 0, NULL, offsetof(cfg, secret), "dsn"},
	{"T_BATCH", VOX_CFG_INT, "256", 1, 4096, NULL, offsetof(cfg, batch), "batch"},
	{"T_FLAG", VOX_CFG_BOOL, "false", 0, 0, NULL, offsetof(cfg, flag), "flag"},
	{"T_LEVEL", VOX_CFG_ENUM, "info", 0, 0, "debug|info|warn", offsetof(cfg, level), "lvl"},
};

/* A fake environment: NULL-terminated name/value pairs. */
static const char *fake_env(const char *name, void *ctx)
{
	const char **kv = ctx;
	for (; kv[0]; kv += 2)
		if (strcmp(kv[0], name) == 0)
			return kv[1];
	return NULL;
}

static void test_defaults_apply(void **state)
{
	(void)state;
	const char *env[] = {"T_SECRET", "s3cret", NULL};
	cfg c = {0};
	vox_buf err;
	vox_buf_init(&err);
	assert_int_equal(vox_cfg_parse(&c, vars, VOX_NELEM(vars), fake_env,
				       env, &err), VOX_OK);
	assert_string_equal(c.url, "nats://x");
	assert_string_equal(c.secret, "s3cret");
	assert_int_equal(c.batch, 256);
	assert_false(c.flag);
	assert_string_equal(c.level, "info");
	assert_int_equal(err.len, 0);
	vox_buf_release(&err);
}

static void test_values_override(void **state)
{
	(void)state;
	const char *env[] = {"T_SECRET", "x", "T_BATCH", "4096", "T_FLAG", "Yes",
			     "T_LEVEL", "debug", "T_URL", "nats://y", NULL};
	cfg c = {0};
	vox_buf err;
	vox_buf_init(&err);
	assert_int_equal(vox_cfg_parse(&c, vars, VOX_NELEM(vars), fake_env,
				       env, &err), VOX_OK);
	assert_int_equal(c.batch, 4096);
	assert_true(c.flag);
	assert_string_equal(c.level, "debug");
	assert_string_equal(c.url, "nats://y");
	vox_buf_release(&err);
}

static void test_every_error_reported_at_once(void **state)
{
	(void)state;
	const char *env[] = {"T_BATCH", "0", "T_FLAG", "maybe", "T_LEVEL",
			     "loud", NULL};
	cfg c = {0};
	vox_buf err;
	vox_buf_init(&err);
	assert_int_equal(vox_cfg_parse(&c, vars, VOX_NELEM(vars), fake_env,
				       env, &err), VOX_E_CONFIG);
	assert_non_null(strstr(err.data, "T_SECRET: required"));
	assert_non_null(strstr(err.data, "T_BATCH: must be an integer in 1..4096"));
	assert_non_null(strstr(err.data, "T_FLAG: must be true or false"));
	assert_non_null(strstr(err.data, "T_LEVEL: must be one of debug|info|warn"));
	vox_buf_release(&err);
}

static void test_int_rejects_garbage(void **state)
{
	(void)state;
	int64_t v = 7;
	assert_false(vox_parse_i64(&v, "12x", 0, 100));
	assert_false(vox_parse_i64(&v, "", 0, 100));
	assert_false(vox_parse_i64(&v, "101", 0, 100));
	assert_false(vox_parse_i64(&v, "-1", 0, 100));
	assert_false(vox_parse_i64(&v, "99999999999999999999", INT64_MIN, INT64_MAX));
	assert_int_equal(v, 7); /* untouched on failure */
	assert_true(vox_parse_i64(&v, "-5", -10, 10));
	assert_int_equal(v, -5);
}

static void test_help_hides_secret_defaults(void **state)
{
	(void)state;
	static const vox_cfg_var sv[] = {
		{"T_KEY", VOX_CFG_SECRET, "hunter2", 0, 0, NULL, 0, "key"},
	};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	vox_cfg_help(f, sv, 1);
	fclose(f);
	assert_null(strstr(text, "hunter2"));
	assert_non_null(strstr(text, "T_KEY"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_apply),
		cmocka_unit_test(test_values_override),
		cmocka_unit_test(test_every_error_reported_at_once),
		cmocka_unit_test(test_int_rejects_garbage),
		cmocka_unit_test(test_help_hides_secret_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
