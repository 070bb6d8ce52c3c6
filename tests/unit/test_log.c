/*
 * Unit: the log sink (src/io/log.c). Hostile values (quotes, backslashes,
 * newlines, '=', spaces, control bytes, UTF-8, empty) passed the way call
 * sites pass them, inside the format's quotes and outside, come out as one
 * line that a logfmt parser (written here, not log.c's) and the JSON
 * parser read back to the very bytes given; numbers of every width stay
 * numbers; journald's priority prefix matches the level. And DSN
 * redaction: a password never reaches a log line.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/json.h"
#include "io/log.h"

static const char *hostile[] = {
	"plain",
	"two words",
	"say \"hi\"",
	"back\\slash",
	"line one\nline two\r\n",
	"tab\there",
	"key=value",
	"",
	"caf\xc3\xa9 \xe2\x82\xac",
	"bell\x07 esc\x1b del\x7f",
	"ERROR:  relation \"calls\" does not exist\nLINE 1: SELECT * FROM calls\n                      ^",
	"\"",
	"\\",
	"trailing\\",
};

/* Capture the lines one call writes. */
static char *capture(bool json, bool journal, void (*emit)(const char *),
		     const char *arg)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	vox_log_set_output(f, json, journal);
	emit(arg);
	vox_log_set_output(NULL, false, false);
	long n = ftell(f);
	rewind(f);
	char *buf = vox_malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void emit_hostile(const char *v)
{
	vox_log_write(VOX_LOG_WARN, "msg=\"query failed\" error=\"%s\" raw=%s"
		      " cut=\"%.*s\" n=%d big=%" PRId64 " size=%zu u=%u",
		      v, v, 3, v, -7, INT64_MIN, (size_t)SIZE_MAX, 4000000000u);
}

/* A logfmt reader of our own: key=value or key="escaped", space-separated;
 * the value of key into out. */
static bool logfmt_get(const char *line, const char *key, vox_buf *out)
{
	const char *p = line;
	size_t kl = strlen(key);
	out->len = 0;
	while (*p && *p != '\n') {
		while (*p == ' ')
			p++;
		const char *k = p;
		while (*p && *p != '=' && *p != ' ' && *p != '\n')
			p++;
		bool match = (size_t)(p - k) == kl && memcmp(k, key, kl) == 0;
		if (*p != '=')
			continue;
		p++;
		vox_buf v;
		vox_buf_init(&v);
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\n')
					fail_msg("raw newline inside a value");
				if (*p != '\\') {
					vox_buf_putc(&v, *p);
					continue;
				}
				p++;
				switch (*p) {
				case 'n': vox_buf_putc(&v, '\n'); break;
				case 'r': vox_buf_putc(&v, '\r'); break;
				case 't': vox_buf_putc(&v, '\t'); break;
				case '"': vox_buf_putc(&v, '"'); break;
				case '\\': vox_buf_putc(&v, '\\'); break;
				case 'x': {
					char hex[3] = {p[1], p[2], 0};
					vox_buf_putc(&v, (char)strtol(hex, NULL, 16));
					p += 2;
					break;
				}
				default: fail_msg("unknown escape \\%c", *p);
				}
			}
			assert_int_equal(*p, '"');
			p++;
		} else {
			while (*p && *p != ' ' && *p != '\n') {
				if (*p == '"' || *p == '=')
					fail_msg("bare value with %c", *p);
				vox_buf_putc(&v, *p++);
			}
		}
		if (match) {
			vox_buf_append(out, v.data ? v.data : "", v.len);
			vox_buf_release(&v);
			return true;
		}
		vox_buf_release(&v);
	}
	return false;
}

static void expect_field(const char *line, const char *key, const char *want,
			 size_t wantlen)
{
	vox_buf v;
	vox_buf_init(&v);
	if (!logfmt_get(line, key, &v))
		fail_msg("no %s in %s", key, line);
	if (v.len != wantlen || memcmp(v.data ? v.data : "", want, wantlen) != 0)
		fail_msg("%s: got [%.*s] in %s", key, (int)v.len, v.data, line);
	vox_buf_release(&v);
}

static void test_logfmt_round_trips_hostile_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < VOX_NELEM(hostile); i++) {
		char *line = capture(false, false, emit_hostile, hostile[i]);
		/* one line, ending in its newline */
		assert_non_null(strchr(line, '\n'));
		assert_int_equal(strchr(line, '\n')[1], '\0');
		expect_field(line, "msg", "query failed", 12);
		expect_field(line, "error", hostile[i], strlen(hostile[i]));
		expect_field(line, "raw", hostile[i], strlen(hostile[i]));
		size_t cut = strnlen(hostile[i], 3);
		expect_field(line, "cut", hostile[i], cut);
		expect_field(line, "level", "warn", 4);
		expect_field(line, "n", "-7", 2);
		expect_field(line, "big", "-9223372036854775808", 20);
		char size[32];
		snprintf(size, sizeof(size), "%zu", (size_t)SIZE_MAX);
		expect_field(line, "size", size, strlen(size));
		expect_field(line, "u", "4000000000", 10);
		free(line);
	}
}

static void test_json_lines_hold_the_same_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < VOX_NELEM(hostile); i++) {
		char *line = capture(true, false, emit_hostile, hostile[i]);
		size_t n = strlen(line);
		assert_int_equal(line[n - 1], '\n');
		assert_null(memchr(line, '\n', n - 1));
		size_t at = 0;
		vox_json *j = vox_json_parse(line, n - 1, &at);
		if (!j)
			fail_msg("not JSON at %zu: %s", at, line);
		const vox_json *e = vox_json_get(j, "error");
		assert_non_null(e);
		assert_int_equal(vox_json_str_len(e), strlen(hostile[i]));
		assert_memory_equal(vox_json_str(e), hostile[i], strlen(hostile[i]));
		const vox_json *r = vox_json_get(j, "raw");
		assert_int_equal(vox_json_str_len(r), strlen(hostile[i]));
		assert_string_equal(vox_json_str(vox_json_get(j, "level")), "warn");
		assert_string_equal(vox_json_str(vox_json_get(j, "msg")), "query failed");
		assert_int_equal(vox_json_type_of(vox_json_get(j, "n")), VOX_JSON_INT);
		assert_int_equal(vox_json_type_of(vox_json_get(j, "big")), VOX_JSON_INT);
		assert_non_null(vox_json_get(j, "ts"));
		vox_json_free(j);
		free(line);
	}
}

static void emit_each_level(const char *v)
{
	vox_log_write(VOX_LOG_DEBUG, "msg=%s", v);
	vox_log_write(VOX_LOG_INFO, "msg=%s", v);
	vox_log_write(VOX_LOG_WARN, "msg=%s", v);
	vox_log_write(VOX_LOG_ERROR, "msg=%s", v);
}

static void test_journal_priorities(void **state)
{
	(void)state;
	char *out = capture(false, true, emit_each_level, "x");
	static const char *want[] = {"<7>ts=", "<6>ts=", "<4>ts=", "<3>ts="};
	char *p = out;
	for (size_t i = 0; i < VOX_NELEM(want); i++) {
		assert_memory_equal(p, want[i], strlen(want[i]));
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	assert_int_equal(*p, '\0');
	free(out);
	/* JSON behind the prefix */
	out = capture(true, true, emit_each_level, "y");
	assert_memory_equal(out, "<7>{\"ts\":", 9);
	free(out);
	/* no prefix unless asked */
	out = capture(false, false, emit_each_level, "z");
	assert_memory_equal(out, "ts=", 3);
	free(out);
}

/* ---- DSN redaction ---- */

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
		cmocka_unit_test(test_logfmt_round_trips_hostile_values),
		cmocka_unit_test(test_json_lines_hold_the_same_values),
		cmocka_unit_test(test_journal_priorities),
		cmocka_unit_test(test_keyword_form),
		cmocka_unit_test(test_uri_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
