/*
 * Text-format array literals (io/pg.c): the one way set-based statements
 * pass a column of values, so its escaping must hold for any bytes.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "io/pg.h"

#define S(lit) ((vox_str){lit, sizeof(lit) - 1})

/* ---- text-format array literals ------------------------------------------ */

static void literal(const vox_str *vals, size_t n, const char *want)
{
	vox_buf b;
	vox_buf_init(&b);
	vox_pg_text_array(&b, vals, n);
	assert_string_equal(b.data, want);
	assert_int_equal(b.len, strlen(want));
	vox_buf_release(&b);
}

static void test_text_array_literal(void **state)
{
	(void)state;
	literal(NULL, 0, "{}");
	vox_str plain[] = {S("a"), S("b c")};
	literal(plain, 2, "{\"a\",\"b c\"}");
	vox_str nulls[] = {{NULL, 0}, S(""), S("NULL"), {NULL, 0}};
	/* NULL is unquoted; the string "NULL" and "" are quoted */
	literal(nulls, 4, "{NULL,\"\",\"NULL\",NULL}");
	vox_str quotes[] = {S("say \"hi\""), S("\"")};
	literal(quotes, 2, "{\"say \\\"hi\\\"\",\"\\\"\"}");
	vox_str slashes[] = {S("a\\b"), S("\\"), S("\\\\\"")};
	literal(slashes, 3, "{\"a\\\\b\",\"\\\\\",\"\\\\\\\\\\\"\"}");
	vox_str syntax[] = {S("a,b"), S("{x}"), S(" lead"), S("}{,\"")};
	literal(syntax, 4, "{\"a,b\",\"{x}\",\" lead\",\"}{,\\\"\"}");
	vox_str utf8[] = {S("caf\xc3\xa9"), S("\xe2\x82\xac 5"),
			  S("\xf0\x9f\x93\x9e")};
	literal(utf8, 3, "{\"caf\xc3\xa9\",\"\xe2\x82\xac 5\",\"\xf0\x9f\x93\x9e\"}");
	/* a view is not NUL-terminated: only len bytes are taken */
	vox_str view[] = {{"abcdef", 3}};
	literal(view, 1, "{\"abc\"}");
	/* appends to what the buffer holds */
	vox_buf b;
	vox_buf_init(&b);
	vox_buf_puts(&b, "x=");
	vox_pg_text_array(&b, plain, 1);
	assert_string_equal(b.data, "x={\"a\"}");
	vox_buf_release(&b);
}

static void test_array_builder(void **state)
{
	(void)state;
	vox_pg_array a;
	vox_pg_array_init(&a);
	assert_string_equal(vox_pg_array_text(&a), "{}");
	vox_pg_array_str(&a, "x\"y", 3);
	vox_pg_array_null(&a);
	vox_pg_array_int(&a, -42);
	vox_pg_array_bool(&a, true);
	assert_string_equal(vox_pg_array_text(&a), "{\"x\\\"y\",NULL,-42,t}");
	/* the literal can be taken, appended to, and taken again */
	vox_pg_array_bool(&a, false);
	assert_string_equal(vox_pg_array_text(&a), "{\"x\\\"y\",NULL,-42,t,f}");
	vox_pg_array_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_array_literal),
		cmocka_unit_test(test_array_builder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
