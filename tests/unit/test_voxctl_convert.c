/*
 * Unit: voxctl's JSON <-> msgpack conversion (src/voxctl/convert.c, built
 * into this test): round trips, timestamps both ways (only under the keys
 * the predicate names, only when they parse), bin and other ext output,
 * non-string map keys, input that is not exactly one msgpack value, and
 * nesting at and beyond the limits.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "voxctl/voxctl.h"

/* util.c is not linked: the globals convert.c reads */
const char *voxctl_server;
bool voxctl_compact;

static int buf_write(void *data, const char *p, size_t n)
{
	vox_buf_append(data, p, n);
	return 0;
}

/* JSON text -> msgpack (into mp) with is_time. */
static void json_mp(const char *json, voxctl_time_key_fn is_time, vox_buf *mp)
{
	vox_json *v = vox_json_parse(json, strlen(json), NULL);
	assert_non_null(v);
	vox_buf_init(mp);
	voxctl_json_to_mp(mp, v, is_time, NULL);
	vox_json_free(v);
}

/* msgpack -> compact JSON must equal want. */
static void expect_json(const void *mp, size_t len, bool pretty, const char *want)
{
	vox_buf out;
	vox_buf_init(&out);
	assert_true(voxctl_mp_to_json(&out, mp, len, pretty));
	vox_buf_putc(&out, '\0');
	if (strcmp(out.data, want) != 0)
		fprintf(stderr, "got  %s\nwant %s\n", out.data, want);
	assert_string_equal(out.data, want);
	vox_buf_release(&out);
}

static void roundtrip(const char *json, const char *want)
{
	vox_buf mp;
	json_mp(json, voxctl_request_time_key, &mp);
	expect_json(mp.data, mp.len, false, want ? want : json);
	vox_buf_release(&mp);
}

static void test_roundtrip(void **state)
{
	(void)state;
	roundtrip("{\"a\":1,\"b\":-2,\"c\":1.5,\"d\":\"x\",\"e\":null,\"f\":true,"
		  "\"g\":false,\"h\":[1,[2,{}],[]],\"i\":{}}",
		  NULL);
	/* key order is kept, escapes and non-ASCII survive */
	roundtrip("{\"z\":1,\"a\":2,\"q\\\"\\n\":\"caf\xc3\xa9 \\u0001\"}", NULL);
	/* extreme integers, a float with an exponent */
	roundtrip("[9223372036854775807,-9223372036854775808,0,1e300]",
		  "[9223372036854775807,-9223372036854775808,0,1.0000000000000001e+300]");
	roundtrip("\"top-level string\"", NULL);
	roundtrip("[]", NULL);

	/* the wire bytes of a small document: fixmap, fixstr, positive fixint */
	vox_buf mp;
	json_mp("{\"limit\":5}", NULL, &mp);
	assert_int_equal(mp.len, 8);
	assert_memory_equal(mp.data, "\x81\xa5limit\x05", 8);
	vox_buf_release(&mp);
}

static void test_pretty(void **state)
{
	(void)state;
	vox_buf mp;
	json_mp("{\"a\":[1,{\"b\":null}],\"c\":{},\"d\":[]}", NULL, &mp);
	expect_json(mp.data, mp.len, true,
		    "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n"
		    "  \"c\": {},\n  \"d\": []\n}");
	vox_buf_release(&mp);
}

/* The ext -1 payload of the value under key in a one-level map, or fail. */
static msgpack_object get(const msgpack_object *map, const char *key)
{
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == strlen(key) &&
		    memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0)
			return kv->val;
	}
	fail_msg("no key %s", key);
	msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
	return nil;
}

static void test_timestamps_json_to_mp(void **state)
{
	(void)state;
	vox_buf mp;
	json_mp("{\"since\":\"2026-11-01T09:00:00Z\",\"until\":\"yesterday\","
		"\"other\":\"2026-11-01T09:00:00Z\",\"nested\":{\"since\":"
		"\"2026-11-01T09:00:00.5Z\"},\"list\":[\"2026-11-01T09:00:00Z\"],"
		"\"n\":{\"until\":7}}",
		voxctl_request_time_key, &mp);
	msgpack_unpacked u;
	size_t off = 0;
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, mp.data, mp.len, &off),
			 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, mp.len);
	msgpack_object since = get(&u.data, "since");
	assert_int_equal(since.type, MSGPACK_OBJECT_EXT);
	assert_int_equal(since.via.ext.type, -1);
	/* a time that does not parse stays a string, for the decoder to name */
	assert_int_equal(get(&u.data, "until").type, MSGPACK_OBJECT_STR);
	/* only the keys the predicate accepts */
	assert_int_equal(get(&u.data, "other").type, MSGPACK_OBJECT_STR);
	msgpack_object nested = get(&u.data, "nested");
	assert_int_equal(get(&nested, "since").type, MSGPACK_OBJECT_EXT);
	/* an array element has no key: stays a string */
	msgpack_object list = get(&u.data, "list");
	assert_int_equal(list.via.array.ptr[0].type, MSGPACK_OBJECT_STR);
	/* a number under a time key is left as a number */
	msgpack_object n = get(&u.data, "n");
	assert_int_equal(get(&n, "until").type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	msgpack_unpacked_destroy(&u);

	/* and back: timestamps as RFC 3339 text in UTC with nanoseconds */
	expect_json(mp.data, mp.len, false,
		    "{\"since\":\"2026-11-01T09:00:00.000000000Z\",\"until\":\"yesterday\","
		    "\"other\":\"2026-11-01T09:00:00Z\",\"nested\":{\"since\":"
		    "\"2026-11-01T09:00:00.500000000Z\"},\"list\":[\"2026-11-01T09:00:00Z\"],"
		    "\"n\":{\"until\":7}}");
	vox_buf_release(&mp);

	/* without a predicate nothing becomes a timestamp */
	json_mp("{\"since\":\"2026-11-01T09:00:00Z\"}", NULL, &mp);
	expect_json(mp.data, mp.len, false, "{\"since\":\"2026-11-01T09:00:00Z\"}");
	vox_buf_release(&mp);

	assert_true(voxctl_request_time_key("since", 5, NULL));
	assert_true(voxctl_request_time_key("until", 5, NULL));
	assert_false(voxctl_request_time_key("sinc", 4, NULL));
	assert_false(voxctl_request_time_key("created_at", 10, NULL));
	assert_false(voxctl_request_time_key(NULL, 0, NULL));
}

static void test_timestamps_mp_to_json(void **state)
{
	(void)state;
	/* the three timestamp forms: 32-bit seconds, 64-bit (30-bit nsec +
	 * 34-bit sec), 96-bit (32-bit nsec + 64-bit sec) */
	static const unsigned char t32[] = {0xd6, 0xff, 0x00, 0x00, 0x00, 0x3c};
	expect_json(t32, sizeof(t32), false, "\"1970-01-01T00:01:00.000000000Z\"");
	/* nsec 1, sec 1: (1 << 34) | 1 */
	static const unsigned char t64[] = {0xd7, 0xff, 0x00, 0x00, 0x00, 0x04,
					    0x00, 0x00, 0x00, 0x01};
	expect_json(t64, sizeof(t64), false, "\"1970-01-01T00:00:01.000000001Z\"");
	/* nsec 123456789, sec 1793523600 (2026-10-31T09:00:00Z) */
	static const unsigned char t96[] = {0xc7, 12,   0xff, 0x07, 0x5b, 0xcd, 0x15,
					    0x00, 0x00, 0x00, 0x00, 0x6a, 0xe6, 0x9a,
					    0x10 + 0x00};
	vox_buf out;
	vox_buf_init(&out);
	assert_true(voxctl_mp_to_json(&out, t96, sizeof(t96), false));
	vox_buf_putc(&out, '\0');
	assert_non_null(strstr(out.data, ".123456789Z\""));
	vox_buf_release(&out);
	/* a malformed timestamp (3 bytes, or nsec over 999999999) is shown as
	 * an extension, not as a wrong time */
	static const unsigned char bad3[] = {0xc7, 3, 0xff, 1, 2, 3};
	expect_json(bad3, sizeof(bad3), false, "{\"ext\":-1,\"base64\":\"AQID\"}");
	static const unsigned char badns[] = {0xd7, 0xff, 0xff, 0xff, 0xff, 0xfc,
					      0x00, 0x00, 0x00, 0x00};
	vox_buf_init(&out);
	assert_true(voxctl_mp_to_json(&out, badns, sizeof(badns), false));
	vox_buf_putc(&out, '\0');
	assert_non_null(strstr(out.data, "\"ext\":-1"));
	vox_buf_release(&out);

	/* a time made from JSON comes back as the same instant */
	vox_buf mp;
	json_mp("{\"until\":\"2026-11-01T10:30:00.25+01:00\"}", voxctl_request_time_key,
		&mp);
	expect_json(mp.data, mp.len, false,
		    "{\"until\":\"2026-11-01T09:30:00.250000000Z\"}");
	vox_buf_release(&mp);
}

static void test_bin_ext_keys(void **state)
{
	(void)state;
	vox_buf mp;
	msgpack_packer pk;
	vox_buf_init(&mp);
	msgpack_packer_init(&pk, &mp, buf_write);
	msgpack_pack_map(&pk, 6);
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "bin", 3);
	msgpack_pack_bin(&pk, 4);
	msgpack_pack_bin_body(&pk, "\x00\xff\x10\x80", 4);
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "ext", 3);
	msgpack_pack_ext(&pk, 3, 5);
	msgpack_pack_ext_body(&pk, "abc", 3);
	msgpack_pack_int(&pk, 7); /* an integer key */
	msgpack_pack_true(&pk);
	msgpack_pack_array(&pk, 1); /* an array key */
	msgpack_pack_str(&pk, 1);
	msgpack_pack_str_body(&pk, "k", 1);
	msgpack_pack_nil(&pk);
	msgpack_pack_str(&pk, 1);
	msgpack_pack_str_body(&pk, "u", 1);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "nan", 3);
	msgpack_pack_double(&pk, 0.0 / 0.0);
	expect_json(mp.data, mp.len, false,
		    "{\"bin\":\"AP8QgA==\",\"ext\":{\"ext\":5,\"base64\":\"YWJj\"},"
		    "\"7\":true,\"[\\\"k\\\"]\":null,\"u\":18446744073709551615,"
		    "\"nan\":null}");
	vox_buf_release(&mp);
	/* an empty bin */
	static const unsigned char empty_bin[] = {0xc4, 0x00};
	expect_json(empty_bin, sizeof(empty_bin), false, "\"\"");
}

static void test_not_msgpack(void **state)
{
	(void)state;
	static const struct {
		const char *data;
		size_t len;
	} bad[] = {
		{"", 0},             /* nothing */
		{"\x92\x01", 2},     /* an array of 2 with one element */
		{"\x01\x02", 2},     /* two documents */
		{"\xc1", 1},         /* the never-used byte */
		{"\xa5" "abc", 4},   /* a truncated string */
		{"\x81\xa1" "a", 3}, /* a map without its value */
		{"\xd9", 1},         /* str8 without its length */
	};
	for (size_t i = 0; i < VOX_NELEM(bad); i++) {
		vox_buf out;
		vox_buf_init(&out);
		if (voxctl_mp_to_json(&out, bad[i].data, bad[i].len, false))
			fprintf(stderr, "accepted bad msgpack #%zu\n", i);
		assert_false(voxctl_mp_to_json(&out, bad[i].data, bad[i].len, false));
		vox_buf_release(&out);
	}
}

static void test_deep_nesting(void **state)
{
	(void)state;
	/* 32 levels (msgpack-c's unpacker stack, MSGPACK_EMBED_STACK_SIZE)
	 * convert and come back unchanged */
	enum { LEVELS = 32 };
	char json[2 * LEVELS + 1];
	for (int i = 0; i < LEVELS; i++) {
		json[i] = '[';
		json[2 * LEVELS - 1 - i] = ']';
	}
	json[2 * LEVELS] = '\0';
	vox_json *v = vox_json_parse(json, strlen(json), NULL);
	assert_non_null(v);
	vox_buf mp0;
	vox_buf_init(&mp0);
	voxctl_json_to_mp(&mp0, v, NULL, NULL);
	assert_int_equal(mp0.len, LEVELS);
	expect_json(mp0.data, mp0.len, false, json);
	vox_buf_release(&mp0);
	vox_json_free(v);
	/* msgpack nested far deeper than anything sensible is refused, not
	 * followed down the stack */
	enum { DEEP = 5000 };
	unsigned char *deep = vox_malloc(DEEP + 1);
	memset(deep, 0x91, DEEP); /* fixarray of 1, DEEP times */
	deep[DEEP] = 0x01;
	vox_buf out;
	vox_buf_init(&out);
	assert_false(voxctl_mp_to_json(&out, deep, DEEP + 1, false));
	assert_false(voxctl_mp_to_json(&out, deep, DEEP + 1, true));
	vox_buf_release(&out);
	/* 30 levels of maps are fine */
	vox_buf mp;
	msgpack_packer pk;
	vox_buf_init(&mp);
	msgpack_packer_init(&pk, &mp, buf_write);
	for (int i = 0; i < 30; i++) {
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str(&pk, 1);
		msgpack_pack_str_body(&pk, "k", 1);
	}
	msgpack_pack_int(&pk, 1);
	vox_buf_init(&out);
	assert_true(voxctl_mp_to_json(&out, mp.data, mp.len, false));
	vox_buf_putc(&out, '\0');
	assert_int_equal(strlen(out.data), 30 * 5 + 1 + 30);
	vox_buf_release(&out);
	vox_buf_release(&mp);
	free(deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_pretty),
		cmocka_unit_test(test_timestamps_json_to_mp),
		cmocka_unit_test(test_timestamps_mp_to_json),
		cmocka_unit_test(test_bin_ext_keys),
		cmocka_unit_test(test_not_msgpack),
		cmocka_unit_test(test_deep_nesting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
