/*
 * Unit: the strict JSON parser (src/core/json.c): what it refuses, what it
 * keeps (key order, integers apart from other numbers, strings with NULs),
 * its depth limit, and where it says a document went wrong.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/json.h"

static void test_json_parser_self_checks(void **state)
{
	(void)state;
	static const char *bad[] = {
		"", " ", "{", "}", "[1,]", "[1 2]", "{\"a\":1,}", "{\"a\" 1}",
		"{a:1}", "{\"a\":1} x", "[] []", "01", "-", "1.", ".5", "1e",
		"+1", "tru", "nul", "True", "\"abc", "\"\\x\"", "\"\\u12\"",
		"\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\tb\"",
		"{\"a\":1,\"a\":2}", "[1]\x01", "NaN", "'a'", "\"\xc0\xaf\"",
		"\"\xed\xa0\x80\"", "\"\xff\"",
	};
	for (size_t i = 0; i < VOX_NELEM(bad); i++) {
		vox_json *v = vox_json_parse(bad[i], strlen(bad[i]), NULL);
		if (v)
			fprintf(stderr, "accepted malformed JSON: %s\n", bad[i]);
		assert_null(v);
		vox_json_free(v);
	}
	/* an embedded NUL is trailing garbage, not the end */
	assert_null(vox_json_parse("{}\0", 3, NULL));

	/* escapes, \u with a surrogate pair and \u0000 */
	const char *s = " \"a\\\"b\\\\c\\/\\n\\t\\u00e9\\ud83d\\ude00\\u0000z\" ";
	vox_json *v = vox_json_parse(s, strlen(s), NULL);
	assert_non_null(v);
	assert_int_equal(vox_json_type_of(v), VOX_JSON_STRING);
	static const char want[] = "a\"b\\c/\n\t\xc3\xa9\xf0\x9f\x98\x80\0z";
	assert_int_equal(vox_json_str_len(v), sizeof(want) - 1);
	assert_memory_equal(vox_json_str(v), want, sizeof(want) - 1);
	vox_json_free(v);

	/* integers and other numbers, key order, lookups */
	s = "{\"b\":[0,-12,1.5,1e3,9223372036854775807,9223372036854775808],"
	    "\"a\":{\"x\":null,\"y\":true,\"z\":false},\"\":\"\"}";
	v = vox_json_parse(s, strlen(s), NULL);
	assert_non_null(v);
	assert_int_equal(vox_json_len(v), 3);
	assert_string_equal(vox_json_key_at(v, 0), "b");
	assert_string_equal(vox_json_key_at(v, 1), "a");
	assert_string_equal(vox_json_key_at(v, 2), "");
	const vox_json *b = vox_json_get(v, "b");
	assert_int_equal(vox_json_type_of(b), VOX_JSON_ARRAY);
	assert_int_equal(vox_json_len(b), 6);
	assert_int_equal(vox_json_type_of(vox_json_at(b, 0)), VOX_JSON_INT);
	assert_int_equal(vox_json_int(vox_json_at(b, 1)), -12);
	assert_int_equal(vox_json_type_of(vox_json_at(b, 2)), VOX_JSON_NUMBER);
	assert_int_equal(vox_json_type_of(vox_json_at(b, 3)), VOX_JSON_NUMBER);
	assert_true(vox_json_number(vox_json_at(b, 3)) == 1000.0);
	assert_int_equal(vox_json_type_of(vox_json_at(b, 4)), VOX_JSON_INT);
	assert_true(vox_json_int(vox_json_at(b, 4)) == INT64_MAX);
	assert_int_equal(vox_json_type_of(vox_json_at(b, 5)), VOX_JSON_NUMBER);
	const vox_json *a = vox_json_get(v, "a");
	assert_non_null(vox_json_get(a, "x"));
	assert_int_equal(vox_json_type_of(vox_json_get(a, "x")), VOX_JSON_NULL);
	assert_true(vox_json_bool(vox_json_get(a, "y")));
	assert_int_equal(vox_json_type_of(vox_json_get(a, "z")), VOX_JSON_BOOL);
	assert_false(vox_json_bool(vox_json_get(a, "z")));
	assert_null(vox_json_get(v, "missing"));
	assert_null(vox_json_get(b, "b")); /* not an object */
	vox_json_free(v);

	/* bounded depth: VOX_JSON_MAX_DEPTH levels parse, one more does not */
	char deep[2 * (VOX_JSON_MAX_DEPTH + 1) + 1];
	for (int i = 0; i < VOX_JSON_MAX_DEPTH; i++) {
		deep[i] = '[';
		deep[2 * VOX_JSON_MAX_DEPTH - 1 - i] = ']';
	}
	v = vox_json_parse(deep, 2 * VOX_JSON_MAX_DEPTH, NULL);
	assert_non_null(v);
	vox_json_free(v);
	for (int i = 0; i <= VOX_JSON_MAX_DEPTH; i++) {
		deep[i] = '[';
		deep[2 * VOX_JSON_MAX_DEPTH + 1 - i] = ']';
	}
	assert_null(vox_json_parse(deep, 2 * (VOX_JSON_MAX_DEPTH + 1), NULL));
}

static void test_error_offset(void **state)
{
	(void)state;
	size_t at = 99;
	static const struct {
		const char *text;
		size_t at;
	} cases[] = {
		{"{\"a\":1,}", 7}, {"[1 2]", 3}, {"{\"a\":1} x", 8}, {"", 0},
		{"  tru", 2},
	};
	for (size_t i = 0; i < VOX_NELEM(cases); i++) {
		assert_null(vox_json_parse(cases[i].text, strlen(cases[i].text), &at));
		if (at != cases[i].at)
			fprintf(stderr, "case %zu: at %zu\n", i, at);
		assert_int_equal(at, cases[i].at);
	}
	vox_json *v = vox_json_parse("[1]", 3, &at);
	assert_non_null(v);
	assert_int_equal(at, 0);
	vox_json_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_parser_self_checks),
		cmocka_unit_test(test_error_offset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
