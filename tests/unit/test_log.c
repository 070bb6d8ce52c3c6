/* Unit tests of DSN redaction: a password never reaches a log line. */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "io/log.h"

static void redact(const char *dsn, const char *want)
{
	char out[256];
	vox_log_redact_dsn(out, sizeof(out), dsn);
	assert_string_equal(out, want);
}

static void test_keyword_form(void **state)
{
	(void)state;
	redact("host=127.0.0.1 port=5 password=hunter2 dbname=vox",
	       "host=127.0.0.1 port=5 password=*** dbname=vox");
	redact("password = 'a b\\' c' user=x", "password = *** user=x");
	redact("host=h", "host=h");
}

static void test_uri_form(void **state)
{
	(void)state;
	redact("postgres://vox:hunter2@127.0.0.1:5/vox",
	       "postgres://vox:***@127.0.0.1:5/vox");
	redact("postgresql://h/db?password=hunter2&sslmode=disable",
	       "postgresql://h/db?password=***&sslmode=disable");
	redact("postgres://vox@h/db", "postgres://vox@h/db");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyword_form),
		cmocka_unit_test(test_uri_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
