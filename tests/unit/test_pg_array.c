/*
 * Binary array parameters (io/pg.c): the one way set-based statements pass
 * a column of values. The layout is PostgreSQL's array_recv format; a wrong
 * byte here is a refused statement or, worse, a wrong value stored, so the
 * bytes are checked one by one. test_calls sends them to a real server.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/pg.h"

static uint32_t be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
	       (uint32_t)u[2] << 8 | u[3];
}

static int64_t be64(const char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The header of a one-dimensional array of n elements. */
static const char *header(vox_pg_array *a, int *len, vox_pg_type type,
			  uint32_t n, bool nulls)
{
	const char *b = vox_pg_array_bytes(a, len);
	assert_true(*len >= VOX_PG_ARRAY_HEADER);
	assert_int_equal(be32(b), 1);          /* ndim */
	assert_int_equal(be32(b + 4), nulls);  /* has nulls */
	assert_int_equal(be32(b + 8), type);   /* element type */
	assert_int_equal(be32(b + 12), n);     /* length */
	assert_int_equal(be32(b + 16), 1);     /* lower bound */
	return b + VOX_PG_ARRAY_HEADER;
}

static void test_empty_array_has_no_dimension(void **state)
{
	(void)state;
	vox_pg_array a;
	int len;
	vox_pg_array_init(&a, VOX_PG_UUID);
	const char *b = vox_pg_array_bytes(&a, &len);
	assert_int_equal(len, 12);
	assert_int_equal(be32(b), 0);
	assert_int_equal(be32(b + 4), 0);
	assert_int_equal(be32(b + 8), 2950);
	vox_pg_array_release(&a);
}

static void test_text_elements_are_length_prefixed_bytes(void **state)
{
	(void)state;
	vox_pg_array a;
	int len;
	vox_pg_array_init(&a, VOX_PG_TEXT);
	vox_pg_array_str(&a, "a\"b\\", 4);
	vox_pg_array_view(&a, (vox_str){NULL, 0});
	vox_pg_array_str(&a, "", 0);
	vox_pg_array_view(&a, (vox_str){"NULLish", 4}); /* only len bytes */
	const char *e = header(&a, &len, VOX_PG_TEXT, 4, true);
	assert_int_equal(len, VOX_PG_ARRAY_HEADER + (4 + 4) + 4 + (4 + 0) + (4 + 4));
	assert_int_equal(be32(e), 4);
	assert_memory_equal(e + 4, "a\"b\\", 4);
	e += 8;
	assert_int_equal(be32(e), UINT32_MAX); /* NULL: length -1 */
	e += 4;
	assert_int_equal(be32(e), 0);
	e += 4;
	assert_int_equal(be32(e), 4);
	assert_memory_equal(e + 4, "NULL", 4);
	vox_pg_array_release(&a);
}

static void test_no_null_flag_without_nulls(void **state)
{
	(void)state;
	vox_pg_array a;
	int len;
	vox_pg_array_init(&a, VOX_PG_TEXT);
	vox_pg_array_str(&a, "x", 1);
	header(&a, &len, VOX_PG_TEXT, 1, false);
	/* bytes can be taken, appended to, and taken again */
	vox_pg_array_null(&a);
	header(&a, &len, VOX_PG_TEXT, 2, true);
	assert_int_equal(len, VOX_PG_ARRAY_HEADER + 5 + 4);
	vox_pg_array_release(&a);
}

static void test_uuid_is_sixteen_raw_bytes(void **state)
{
	(void)state;
	vox_pg_array a;
	vox_uuid u = {"00112233-4455-6677-8899-aabbccddeeff"};
	vox_uuid upper = {"AABBCCDD-EEFF-0011-2233-445566778899"};
	vox_uuid none = {""};
	int len;
	vox_pg_array_init(&a, VOX_PG_UUID);
	vox_pg_array_uuid(&a, &u);
	vox_pg_array_uuid(&a, &none);
	vox_pg_array_uuid(&a, &upper);
	const char *e = header(&a, &len, VOX_PG_UUID, 3, true);
	static const unsigned char want[16] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
	static const unsigned char want_upper[16] = {
		0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11,
		0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99};
	assert_int_equal(be32(e), 16);
	assert_memory_equal(e + 4, want, 16);
	assert_int_equal(be32(e + 20), UINT32_MAX);
	assert_int_equal(be32(e + 24), 16);
	assert_memory_equal(e + 28, want_upper, 16);
	assert_int_equal(len, VOX_PG_ARRAY_HEADER + 20 + 4 + 20);
	vox_pg_array_release(&a);
}

static void test_integers_are_big_endian_of_their_width(void **state)
{
	(void)state;
	vox_pg_array a4, a8;
	int len;
	vox_pg_array_init(&a4, VOX_PG_INT4);
	vox_pg_array_init(&a8, VOX_PG_INT8);
	vox_pg_array_int(&a4, -42);
	vox_pg_array_int(&a4, INT32_MAX);
	vox_pg_array_int(&a8, INT64_MIN);
	vox_pg_array_int(&a8, 5000000000);
	const char *e = header(&a4, &len, VOX_PG_INT4, 2, false);
	assert_int_equal(len, VOX_PG_ARRAY_HEADER + 16);
	assert_int_equal(be32(e), 4);
	assert_int_equal((int32_t)be32(e + 4), -42);
	assert_int_equal(be32(e + 12), INT32_MAX);
	e = header(&a8, &len, VOX_PG_INT8, 2, false);
	assert_int_equal(len, VOX_PG_ARRAY_HEADER + 24);
	assert_int_equal(be32(e), 8);
	assert_true(be64(e + 4) == INT64_MIN);
	assert_true(be64(e + 16) == 5000000000);
	vox_pg_array_release(&a4);
	vox_pg_array_release(&a8);
}

static void test_bool_and_jsonb(void **state)
{
	(void)state;
	vox_pg_array b, j;
	int len;
	vox_pg_array_init(&b, VOX_PG_BOOL);
	vox_pg_array_init(&j, VOX_PG_JSONB);
	vox_pg_array_bool(&b, true);
	vox_pg_array_bool(&b, false);
	vox_pg_array_str(&j, "{}", 2);
	const char *e = header(&b, &len, VOX_PG_BOOL, 2, false);
	assert_int_equal(be32(e), 1);
	assert_int_equal(e[4], 1);
	assert_int_equal(be32(e + 5), 1);
	assert_int_equal(e[9], 0);
	e = header(&j, &len, VOX_PG_JSONB, 1, false);
	assert_int_equal(be32(e), 3); /* version byte, then the text */
	assert_int_equal(e[4], 1);
	assert_memory_equal(e + 5, "{}", 2);
	vox_pg_array_release(&b);
	vox_pg_array_release(&j);
}

/* Microseconds since 2000-01-01 of one time. */
static int64_t micros(int64_t sec, int32_t nsec)
{
	vox_pg_array a;
	int len;
	vox_time t = {sec, nsec, true};
	vox_pg_array_init(&a, VOX_PG_TIMESTAMPTZ);
	vox_pg_array_time(&a, &t);
	const char *e = header(&a, &len, VOX_PG_TIMESTAMPTZ, 1, false);
	assert_int_equal(be32(e), 8);
	int64_t v = be64(e + 4);
	vox_pg_array_release(&a);
	return v;
}

static void test_time_is_microseconds_since_2000(void **state)
{
	(void)state;
	assert_true(micros(946684800, 0) == 0);
	assert_true(micros(946684799, 0) == -1000000);
	assert_true(micros(946684801, 999) == 1000001);
	/* half a microsecond rounds to even, as the server's text input */
	assert_true(micros(946684801, 1500) == 1000002);
	assert_true(micros(946684801, 2500) == 1000002);
	assert_true(micros(946684801, 2501) == 1000003);
	assert_true(micros(946684801, 999999999) == 2000000);
	/* 2026-12-03T00:00:00Z */
	assert_true(micros(1796256000, 0) == (1796256000 - 946684800) * INT64_C(1000000));
	vox_pg_array a;
	int len;
	vox_time unset = {0};
	vox_pg_array_init(&a, VOX_PG_TIMESTAMPTZ);
	vox_pg_array_time(&a, &unset);
	const char *e = header(&a, &len, VOX_PG_TIMESTAMPTZ, 1, true);
	assert_int_equal(be32(e), UINT32_MAX);
	vox_pg_array_release(&a);
}

static void test_params_mix_text_and_binary(void **state)
{
	(void)state;
	vox_pg_params p;
	vox_pg_params_init(&p);
	vox_pg_params_text(&p, "durable");
	vox_pg_array *a = vox_pg_params_array(&p, VOX_PG_INT8);
	vox_pg_params_text(&p, NULL);
	vox_pg_array_int(a, 7);
	assert_int_equal(p.n, 3);
	assert_int_equal(p.fmt[0], 0);
	assert_int_equal(p.fmt[1], 1);
	assert_int_equal(p.fmt[2], 0);
	assert_string_equal(p.val[0], "durable");
	assert_null(p.val[2]);
	assert_ptr_equal(a, &p.col[1]);
	vox_pg_params_release(&p);
	assert_int_equal(p.n, 0);
}

static void test_columns_are_typed_in_order(void **state)
{
	(void)state;
	static const vox_pg_type types[] = {VOX_PG_UUID, VOX_PG_INT4, VOX_PG_TEXT};
	vox_pg_params p;
	vox_pg_array *cols[3];
	vox_pg_params_columns(&p, cols, types, 3);
	assert_int_equal(p.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_ptr_equal(cols[i], &p.col[i]);
		assert_int_equal(cols[i]->type, types[i]);
		assert_int_equal(p.fmt[i], 1);
	}
	vox_pg_params_release(&p);
}

/* A value the statement's type cannot hold is a bug in the caller: the
 * process stops rather than send a different value. */
static void dies(void (*fn)(void))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stderr))
			_exit(1);
		fn();
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void int4_overflow(void)
{
	vox_pg_array a;
	vox_pg_array_init(&a, VOX_PG_INT4);
	vox_pg_array_int(&a, (int64_t)INT32_MAX + 1);
}

static void string_into_uuid(void)
{
	vox_pg_array a;
	vox_pg_array_init(&a, VOX_PG_UUID);
	vox_pg_array_str(&a, "x", 1);
}

static void test_wrong_values_abort(void **state)
{
	(void)state;
	dies(int4_overflow);
	dies(string_into_uuid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_array_has_no_dimension),
		cmocka_unit_test(test_text_elements_are_length_prefixed_bytes),
		cmocka_unit_test(test_no_null_flag_without_nulls),
		cmocka_unit_test(test_uuid_is_sixteen_raw_bytes),
		cmocka_unit_test(test_integers_are_big_endian_of_their_width),
		cmocka_unit_test(test_bool_and_jsonb),
		cmocka_unit_test(test_time_is_microseconds_since_2000),
		cmocka_unit_test(test_params_mix_text_and_binary),
		cmocka_unit_test(test_columns_are_typed_in_order),
		cmocka_unit_test(test_wrong_values_abort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
