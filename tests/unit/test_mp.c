/* Unit tests of the bounds-checked MessagePack reader (core/mp.c). */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/mp.h"

static vox_mp_err read_int(const char *bytes, size_t n, int64_t *v)
{
	vox_mp r;
	vox_mp_init(&r, bytes, n);
	vox_mp_err e = vox_mp_int(&r, v);
	if (e == VOX_MP_OK)
		assert_int_equal(vox_mp_left(&r), 0);
	return e;
}

static void test_every_integer_width(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(read_int("\x05", 1, &v), VOX_MP_OK);
	assert_int_equal(v, 5);
	assert_int_equal(read_int("\xff", 1, &v), VOX_MP_OK);
	assert_int_equal(v, -1);
	assert_int_equal(read_int("\xcc\xff", 2, &v), VOX_MP_OK);
	assert_int_equal(v, 255);
	assert_int_equal(read_int("\xcd\x01\x00", 3, &v), VOX_MP_OK);
	assert_int_equal(v, 256);
	assert_int_equal(read_int("\xce\x00\x01\x51\x80", 5, &v), VOX_MP_OK);
	assert_int_equal(v, 86400);
	assert_int_equal(read_int("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, &v), VOX_MP_OK);
	assert_true(v == INT64_MAX);
	assert_int_equal(read_int("\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 9, &v),
			 VOX_MP_RANGE);
	assert_int_equal(read_int("\xd0\x80", 2, &v), VOX_MP_OK);
	assert_int_equal(v, -128);
	assert_int_equal(read_int("\xd1\xff\x00", 3, &v), VOX_MP_OK);
	assert_int_equal(v, -256);
	assert_int_equal(read_int("\xd2\xff\xff\xff\xfe", 5, &v), VOX_MP_OK);
	assert_int_equal(v, -2);
	assert_int_equal(read_int("\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, &v), VOX_MP_OK);
	assert_true(v == INT64_MIN);
}

static void test_truncation_everywhere(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(read_int("", 0, &v), VOX_MP_TRUNCATED);
	assert_int_equal(read_int("\xcd\x01", 2, &v), VOX_MP_TRUNCATED);
	assert_int_equal(read_int("\xcf\x00\x00\x00", 4, &v), VOX_MP_TRUNCATED);
	assert_int_equal(read_int("\xc1", 1, &v), VOX_MP_MALFORMED);
	assert_int_equal(read_int("\xa1x", 2, &v), VOX_MP_TYPE);

	vox_mp r;
	const char *s;
	uint32_t n;
	/* str32 claiming 4 GiB with 3 bytes behind it */
	vox_mp_init(&r, "\xdb\xff\xff\xff\xff" "abc", 8);
	assert_int_equal(vox_mp_str(&r, &s, &n), VOX_MP_TRUNCATED);
	/* map32 claiming 2^32-1 entries: refused before anything is read */
	vox_mp_init(&r, "\xdf\xff\xff\xff\xff\x01\x02", 7);
	assert_int_equal(vox_mp_map(&r, &n), VOX_MP_TRUNCATED);
	/* array16 of 3 with only 2 bytes left */
	vox_mp_init(&r, "\xdc\x00\x03\x01\x02", 5);
	assert_int_equal(vox_mp_array(&r, &n), VOX_MP_TRUNCATED);
	/* a fixmap of 2 entries needs 4 bytes */
	vox_mp_init(&r, "\x82\xa1k\x01", 4);
	assert_int_equal(vox_mp_map(&r, &n), VOX_MP_TRUNCATED);
	vox_mp_init(&r, "\x82\xa1k\x01\xa1j\x02", 7);
	assert_int_equal(vox_mp_map(&r, &n), VOX_MP_OK);
	assert_int_equal(n, 2);
}

static void test_strings_and_ext(void **state)
{
	(void)state;
	vox_mp r;
	const char *s;
	uint32_t n;
	vox_mp_init(&r, "\xd9\x03" "abc", 5);
	assert_int_equal(vox_mp_str(&r, &s, &n), VOX_MP_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(s, "abc", 3);
	vox_mp_init(&r, "\xda\x00\x01" "z", 4);
	assert_int_equal(vox_mp_str(&r, &s, &n), VOX_MP_OK);
	assert_int_equal(n, 1);
	int8_t t;
	const uint8_t *b;
	vox_mp_init(&r, "\xd6\xff\x00\x00\x00\x01", 6);
	assert_int_equal(vox_mp_ext(&r, &t, &b, &n), VOX_MP_OK);
	assert_int_equal(t, -1);
	assert_int_equal(n, 4);
	vox_mp_init(&r, "\xc7\x0c\xff\x00", 4);
	assert_int_equal(vox_mp_ext(&r, &t, &b, &n), VOX_MP_TRUNCATED);
	double d;
	vox_mp_init(&r, "\xcb\x3f\xe0\x00\x00\x00\x00\x00\x00", 9);
	assert_int_equal(vox_mp_double(&r, &d), VOX_MP_OK);
	assert_true(d == 0.5);
	vox_mp_init(&r, "\xca\x3f\x00\x00\x00", 5);
	assert_int_equal(vox_mp_double(&r, &d), VOX_MP_OK);
	assert_true(d == 0.5);
	vox_mp_init(&r, "\x01", 1);
	assert_int_equal(vox_mp_double(&r, &d), VOX_MP_OK);
	assert_true(d == 1.0);
}

static void test_skip_is_bounded_and_iterative(void **state)
{
	(void)state;
	vox_mp r;
	/* {"a":[1,{"b":nil}],"c":"x"} followed by one byte */
	const char ok[] = "\x82\xa1" "a" "\x92\x01\x81\xa1" "b" "\xc0\xa1" "c" "\xa1" "x" "\x07";
	vox_mp_init(&r, ok, sizeof(ok) - 1);
	assert_int_equal(vox_mp_skip(&r), VOX_MP_OK);
	assert_int_equal(vox_mp_left(&r), 1);

	/* 32 levels of nesting are fine, 33 are not */
	char deep[64];
	for (int depth = 32; depth <= 33; depth++) {
		memset(deep, 0x91, (size_t)depth);
		deep[depth] = 0x01;
		vox_mp_init(&r, deep, (size_t)depth + 1);
		assert_int_equal(vox_mp_skip(&r),
				 depth == 32 ? VOX_MP_OK : VOX_MP_TOO_DEEP);
	}
	/* a million nested arrays: refused quickly, no stack growth */
	size_t big = 1000000;
	char *bomb = vox_malloc(big + 1);
	memset(bomb, 0x91, big);
	bomb[big] = 0;
	vox_mp_init(&r, bomb, big + 1);
	assert_int_equal(vox_mp_skip(&r), VOX_MP_TOO_DEEP);
	free(bomb);
	/* skipping a big uint64 is fine even though it does not fit int64 */
	vox_mp_init(&r, "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9);
	assert_int_equal(vox_mp_skip(&r), VOX_MP_OK);
	assert_int_equal(vox_mp_left(&r), 0);
	vox_mp_init(&r, "\xc1", 1);
	assert_int_equal(vox_mp_skip(&r), VOX_MP_MALFORMED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_integer_width),
		cmocka_unit_test(test_truncation_everywhere),
		cmocka_unit_test(test_strings_and_ext),
		cmocka_unit_test(test_skip_is_bounded_and_iterative),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
