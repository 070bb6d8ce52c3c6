/* Unit tests of the growable buffer and JSON string escaping. */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/buf.h"

static void json(const char *in, size_t n, const char *want)
{
	vox_buf b;
	vox_buf_init(&b);
	vox_buf_json_str(&b, in, n);
	assert_string_equal(b.data, want);
	vox_buf_release(&b);
}

static void test_json_escapes(void **state)
{
	(void)state;
	json("plain", 5, "\"plain\"");
	json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	json("\n\t\x01", 3, "\"\\n\\t\\u0001\"");
	json("nul\0x", 5, "\"nul\\u0000x\"");
	json("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");
}

static void test_json_replaces_invalid_utf8(void **state)
{
	(void)state;
	json("\xff", 1, "\"\\ufffd\"");
	json("\xc3", 1, "\"\\ufffd\"");            /* truncated sequence */
	json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\""); /* overlong */
	json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
}

static void test_growth_and_printf(void **state)
{
	(void)state;
	vox_buf b;
	vox_buf_init(&b);
	for (int i = 0; i < 1000; i++)
		vox_buf_printf(&b, "%d,", i);
	assert_int_equal(b.len, strlen(b.data));
	assert_memory_equal(b.data, "0,1,2,", 6);
	assert_non_null(strstr(b.data, ",999,"));
	vox_buf_reset(&b);
	assert_int_equal(b.len, 0);
	vox_buf_hex(&b, "\x00\xab\xff", 3);
	assert_string_equal(b.data, "00abff");
	vox_buf_release(&b);
	assert_null(b.data);
}

/* vox_parse_decimal: digits only, 1 to 20 of them, up to UINT64_MAX; a
 * refusal leaves the output alone. */
static void test_parse_decimal(void **state)
{
	(void)state;
	uint64_t v = 7;
	assert_true(vox_parse_decimal(&v, "0", 1));
	assert_true(v == 0);
	assert_true(vox_parse_decimal(&v, "0042", 4));
	assert_true(v == 42);
	assert_true(vox_parse_decimal(&v, "18446744073709551615", 20));
	assert_true(v == UINT64_MAX);
	assert_true(vox_parse_decimal(&v, "123x", 3)); /* only n bytes read */
	assert_true(v == 123);
	static const char *const bad[] = {"", "18446744073709551616", "-1", "+1",
					  " 1", "1 ", "1a", "000000000000000000001"};
	for (size_t i = 0; i < VOX_NELEM(bad); i++) {
		v = 99;
		assert_false(vox_parse_decimal(&v, bad[i], strlen(bad[i])));
		assert_true(v == 99);
	}
}

static void test_choices(void **state)
{
	(void)state;
	static const char *const list[] = {"low", "medium", "high", NULL};
	static const char *const none[] = {NULL};
	char out[64];
	assert_int_equal(vox_choice_index(list, "low", 3), 0);
	assert_int_equal(vox_choice_index(list, "high", 4), 2);
	assert_int_equal(vox_choice_index(list, "highest", 4), 2); /* n bytes */
	assert_int_equal(vox_choice_index(list, "hig", 3), -1);
	assert_int_equal(vox_choice_index(list, "", 0), -1);
	assert_int_equal(vox_choice_index(none, "low", 3), -1);
	vox_choice_join(out, sizeof(out), list, "|");
	assert_string_equal(out, "low|medium|high");
	vox_choice_join(out, sizeof(out), list, ", ");
	assert_string_equal(out, "low, medium, high");
	vox_choice_join(out, sizeof(out), none, "|");
	assert_string_equal(out, "");
	/* cut to fit, never past the buffer */
	char small[9];
	memset(small, 'x', sizeof(small));
	vox_choice_join(small, sizeof(small), list, "|");
	assert_string_equal(small, "low|medi");
	char tiny[1] = {'x'};
	vox_choice_join(tiny, sizeof(tiny), list, "|");
	assert_int_equal(tiny[0], '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_decimal),
		cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_json_replaces_invalid_utf8),
		cmocka_unit_test(test_growth_and_printf),
		cmocka_unit_test(test_choices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
