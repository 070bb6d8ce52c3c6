/*
 * Unit: vox-query's requests and cursors (src/core/query_request.c).
 * Cursors round-trip and refuse anything that is not one of theirs;
 * requests decode every key with its limits, ignore what an endpoint does
 * not read, treat nil as absent, and refuse with a message naming the
 * field.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include <msgpack.h>

#include "core/query_request.h"
#include "req_build.h"

/* ---- cursors ------------------------------------------------------------- */

static void test_cursor_round_trip(void **state)
{
	(void)state;
	static const int64_t keys[] = {0, 1, -1, INT64_MAX, INT64_MIN,
				       INT64_C(1793523600123456),
				       INT64_C(-62135596800000000)};
	for (size_t i = 0; i < VOX_NELEM(keys); i++) {
		vox_qcursor c = {.key = keys[i]}, back;
		char text[VOX_QCURSOR_MAX];
		for (int b = 0; b < 16; b++)
			c.id[b] = (uint8_t)(i * 16 + (size_t)b * 7);
		vox_qcursor_encode(VOX_QCURSOR_CALLS, &c, text);
		/* base64url, no padding: safe in any transport, no '=' */
		assert_null(strpbrk(text, "+/="));
		assert_true(vox_qcursor_decode(&back, VOX_QCURSOR_CALLS, text, strlen(text)));
		assert_int_equal(back.key, keys[i]);
		assert_memory_equal(back.id, c.id, 16);
		/* one kind's cursor is not another's */
		assert_false(vox_qcursor_decode(&back, VOX_QCURSOR_TRANSACTIONS,
						text, strlen(text)));

		vox_qcursor_encode(VOX_QCURSOR_TRANSACTIONS, &c, text);
		assert_true(vox_qcursor_decode(&back, VOX_QCURSOR_TRANSACTIONS,
					       text, strlen(text)));
		assert_int_equal(back.key, keys[i]);
		assert_false(vox_qcursor_decode(&back, VOX_QCURSOR_CALLS, text,
						strlen(text)));
	}
}

static void test_cursor_refuses_garbage(void **state)
{
	(void)state;
	vox_qcursor c = {.key = 42}, back;
	char text[VOX_QCURSOR_MAX];
	vox_qcursor_encode(VOX_QCURSOR_TRANSACTIONS, &c, text);
	size_t n = strlen(text);
	/* truncated, extended, bad characters, empty, too long */
	assert_false(vox_qcursor_decode(&back, VOX_QCURSOR_TRANSACTIONS, text, n - 1));
	char longer[VOX_QCURSOR_MAX + 8];
	snprintf(longer, sizeof(longer), "%sAA", text);
	assert_false(vox_qcursor_decode(&back, VOX_QCURSOR_TRANSACTIONS,
					longer, strlen(longer)));
	char bad[VOX_QCURSOR_MAX];
	snprintf(bad, sizeof(bad), "%s", text);
	bad[3] = '*';
	assert_false(vox_qcursor_decode(&back, VOX_QCURSOR_TRANSACTIONS, bad, n));
	assert_false(vox_qcursor_decode(&back, VOX_QCURSOR_TRANSACTIONS, "", 0));
	static const char huge[200] = {0};
	assert_false(vox_qcursor_decode(&back, VOX_QCURSOR_TRANSACTIONS, huge,
					sizeof(huge)));
	/* a later version is not this one's */
	snprintf(bad, sizeof(bad), "%s", text);
	bad[0] = bad[0] == 'A' ? 'B' : 'A';
	assert_false(vox_qcursor_decode(&back, VOX_QCURSOR_TRANSACTIONS, bad, n));
}

/* ---- requests ------------------------------------------------------------ */

static void req_str(req *r, const char *k, const char *v)
{
	req_key(r, k);
	msgpack_pack_str(&r->pk, strlen(v));
	msgpack_pack_str_body(&r->pk, v, strlen(v));
}

/* vox_qreq_parse with the error's message copied to err (n bytes). */
static vox_status qparse(vox_qreq *q, unsigned allowed, vox_qcursor_kind kind,
			 const void *data, size_t len, char *err, size_t n)
{
	vox_error e = {0};
	vox_status st = vox_qreq_parse(q, allowed, kind, data, len, &e);
	snprintf(err, n, "%s", st == VOX_OK ? "" : e.message);
	if (st != VOX_OK) /* every refusal has a stable reason */
		assert_true(e.code != NULL && e.status == st);
	return st;
}

static vox_status parse(req *r, unsigned allowed, vox_qreq *q, char *err, size_t n)
{
	vox_status st = qparse(q, allowed, VOX_QCURSOR_CALLS, r->sb.data,
			       r->sb.size, err, n);
	msgpack_sbuffer_destroy(&r->sb);
	return st;
}

#define ALL_LIST (VOX_QK_LIMIT | VOX_QK_BEFORE | VOX_QK_STATUS | \
		  VOX_QK_DIRECTION | VOX_QK_SINCE | VOX_QK_UNTIL)

static void test_empty_and_defaults(void **state)
{
	(void)state;
	vox_qreq q;
	char err[200];
	/* an empty body is {} */
	assert_int_equal(qparse(&q, ALL_LIST, VOX_QCURSOR_CALLS, "", 0, err,
					sizeof(err)),
			 VOX_OK);
	assert_int_equal(q.has, 0);
	assert_int_equal(q.limit, VOX_QUERY_DEFAULT_LIMIT);
	assert_int_equal(qparse(&q, ALL_LIST, VOX_QCURSOR_CALLS, "\x80", 1, err,
					sizeof(err)),
			 VOX_OK);
	assert_int_equal(q.has, 0);
}

static void test_every_key(void **state)
{
	(void)state;
	vox_qreq q;
	char err[200] = "";
	req r;
	vox_qcursor c = {.key = 77, .id = {1, 2, 3}};
	char cur[VOX_QCURSOR_MAX];
	vox_qcursor_encode(VOX_QCURSOR_CALLS, &c, cur);
	req_init(&r, 9);
	req_key(&r, "limit");
	msgpack_pack_int(&r.pk, 100);
	req_str(&r, "before", cur);
	req_str(&r, "status", "in_progress");
	req_str(&r, "direction", "outbound");
	req_key(&r, "since");
	msgpack_pack_int64(&r.pk, INT64_C(1793523600123)); /* ms */
	req_key(&r, "until");
	/* ext -1, 8 bytes: 1793523700 s + 5000 ns */
	uint64_t v = (UINT64_C(5000) << 34) | UINT64_C(1793523700);
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
	msgpack_pack_ext(&r.pk, 8, -1);
	msgpack_pack_ext_body(&r.pk, b, 8);
	req_str(&r, "org_id", "b0000000-0000-4000-8000-00000000000b"); /* ignored */
	req_str(&r, "call_id", "A0000000-0000-4000-8000-00000000000A"); /* not allowed here */
	req_str(&r, "phone", "bad"); /* not allowed here: not even checked */
	assert_int_equal(parse(&r, ALL_LIST, &q, err, sizeof(err)), VOX_OK);
	assert_int_equal(q.has, ALL_LIST);
	assert_int_equal(q.limit, 100);
	assert_int_equal(q.before.key, 77);
	assert_memory_equal(q.before.id, c.id, 16);
	assert_string_equal(q.status, "in_progress");
	assert_string_equal(q.direction, "outbound");
	assert_int_equal(q.since_us, INT64_C(1793523600123000));
	assert_int_equal(q.until_us, INT64_C(1793523700000005));

	/* the single-row keys, where they are allowed */
	req_init(&r, 3);
	req_str(&r, "call_id", "A0000000-0000-4000-8000-00000000000A");
	req_str(&r, "contact_id", "c0000000-0000-4000-8000-0000000000a1");
	req_str(&r, "phone", "+447700900123");
	assert_int_equal(parse(&r, VOX_QK_CALL_ID | VOX_QK_CONTACT_ID | VOX_QK_PHONE, &q,
			       err, sizeof(err)),
			 VOX_OK);
	assert_string_equal(q.call_id.s, "a0000000-0000-4000-8000-00000000000a");
	assert_string_equal(q.contact_id.s, "c0000000-0000-4000-8000-0000000000a1");
	assert_string_equal(q.phone, "+447700900123");
}

static void test_nil_is_absent(void **state)
{
	(void)state;
	vox_qreq q;
	char err[200];
	req r;
	req_init(&r, 2);
	req_key(&r, "limit");
	msgpack_pack_nil(&r.pk);
	req_key(&r, "status");
	msgpack_pack_nil(&r.pk);
	assert_int_equal(parse(&r, ALL_LIST, &q, err, sizeof(err)), VOX_OK);
	assert_int_equal(q.has, 0);
	assert_int_equal(q.limit, VOX_QUERY_DEFAULT_LIMIT);
}

/* The events' rule (subjects/README.md, duplicate_key): a key the
 * endpoint reads, given twice, is refused even if one of the two is nil;
 * a repeated key it does not read is ignored. */
static void test_a_key_given_twice_is_refused(void **state)
{
	(void)state;
	vox_qreq q;
	char err[200];
	req r;
	req_init(&r, 2);
	req_key(&r, "limit");
	msgpack_pack_int(&r.pk, 5);
	req_key(&r, "limit");
	msgpack_pack_nil(&r.pk);
	assert_int_equal(parse(&r, ALL_LIST, &q, err, sizeof(err)), VOX_E_DECODE);
	assert_string_equal(err, "limit: appears twice");
	req_init(&r, 2);
	req_key(&r, "status");
	msgpack_pack_nil(&r.pk);
	req_key(&r, "status");
	msgpack_pack_str(&r.pk, 9);
	msgpack_pack_str_body(&r.pk, "completed", 9);
	assert_int_equal(parse(&r, ALL_LIST, &q, err, sizeof(err)), VOX_E_DECODE);
	assert_string_equal(err, "status: appears twice");
	req_init(&r, 3);
	req_key(&r, "x");
	msgpack_pack_int(&r.pk, 1);
	req_key(&r, "x");
	msgpack_pack_int(&r.pk, 2);
	req_key(&r, "limit");
	msgpack_pack_int(&r.pk, 7);
	assert_int_equal(parse(&r, ALL_LIST, &q, err, sizeof(err)), VOX_OK);
	assert_int_equal(q.limit, 7);
}

typedef void (*build_fn)(req *r);

static void bad_limit_0(req *r) { req_key(r, "limit"); msgpack_pack_int(&r->pk, 0); }
static void bad_limit_101(req *r) { req_key(r, "limit"); msgpack_pack_int(&r->pk, 101); }
static void bad_limit_neg(req *r) { req_key(r, "limit"); msgpack_pack_int(&r->pk, -3); }
static void bad_limit_float(req *r) { req_key(r, "limit"); msgpack_pack_double(&r->pk, 5.0); }
static void bad_before_int(req *r) { req_key(r, "before"); msgpack_pack_int(&r->pk, 5); }
static void bad_before_text(req *r) { req_str(r, "before", "page-2"); }
static void bad_status(req *r) { req_str(r, "status", "COMPLETED"); }
static void bad_direction(req *r) { req_str(r, "direction", ""); }
static void bad_since_str(req *r) { req_str(r, "since", "2026-11-01T00:00:00Z"); }
static void bad_since_1970(req *r) { req_key(r, "since"); msgpack_pack_int(&r->pk, 1000); }
static void bad_until_ext(req *r)
{
	req_key(r, "until");
	msgpack_pack_ext(&r->pk, 4, 3);
	msgpack_pack_ext_body(&r->pk, "\0\0\0\0", 4);
}
static void bad_window(req *r)
{
	req_key(r, "since");
	msgpack_pack_int64(&r->pk, INT64_C(1793523600000));
	req_key(r, "until");
	msgpack_pack_int64(&r->pk, INT64_C(1793523600000));
}
static void bad_call_id(req *r) { req_str(r, "call_id", "a0000000-0000-4000-8000-00000000000"); }
static void bad_contact_id(req *r) { req_key(r, "contact_id"); msgpack_pack_bin(&r->pk, 0); }
static void bad_phone(req *r) { req_str(r, "phone", "+0447700900"); }
static void bad_phone_long(req *r) { req_str(r, "phone", "+4477009001234567"); }

static void test_refusals_name_the_field(void **state)
{
	(void)state;
	static const struct {
		build_fn build;
		int nkeys;
		const char *field;
	} cases[] = {
		{bad_limit_0, 1, "limit:"},
		{bad_limit_101, 1, "limit:"},
		{bad_limit_neg, 1, "limit:"},
		{bad_limit_float, 1, "limit:"},
		{bad_before_int, 1, "before:"},
		{bad_before_text, 1, "before:"},
		{bad_status, 1, "status:"},
		{bad_direction, 1, "direction:"},
		{bad_since_str, 1, "since:"},
		{bad_since_1970, 1, "since:"},
		{bad_until_ext, 1, "until:"},
		{bad_window, 2, "since: must be before until"},
		{bad_call_id, 1, "call_id:"},
		{bad_contact_id, 1, "contact_id:"},
		{bad_phone, 1, "phone:"},
		{bad_phone_long, 1, "phone:"},
	};
	unsigned all = ALL_LIST | VOX_QK_CALL_ID | VOX_QK_CONTACT_ID | VOX_QK_PHONE;
	for (size_t i = 0; i < VOX_NELEM(cases); i++) {
		vox_qreq q;
		char err[200] = "";
		req r;
		req_init(&r, (uint32_t)cases[i].nkeys);
		cases[i].build(&r);
		assert_int_equal(parse(&r, all, &q, err, sizeof(err)), VOX_E_INVALID);
		if (strncmp(err, cases[i].field, strlen(cases[i].field)) != 0)
			fprintf(stderr, "case %zu: %s\n", i, err);
		assert_memory_equal(err, cases[i].field, strlen(cases[i].field));
	}
}

/* Not a request at all: refused about the whole body (or the field whose
 * value is cut short), with the reason an event would get for the same
 * bytes. */
static void test_not_a_request(void **state)
{
	(void)state;
	static const struct {
		const char *bytes;
		size_t len;
		const char *reason;
		const char *field;
	} cases[] = {
		{"\x90", 1, "not_a_map", ""},          /* an array */
		{"\xa1x", 2, "not_a_map", ""},         /* a string */
		{"\xc1", 1, "not_a_map", ""},          /* never used */
		{"\x81", 1, "truncated", ""},          /* a map cut short */
		{"\x81\xa5limit", 7, "truncated", "limit"}, /* a key without its value */
		{"\x80\x80", 2, "trailing_bytes", ""}, /* two maps */
		{"\x81\x05\x05", 3, "bad_key", ""},    /* an integer key */
		{"\x81\xa3xyz\xdb\xff\xff\xff\xff", 9, "truncated", ""}, /* an ignored key, cut short */
	};
	for (size_t i = 0; i < VOX_NELEM(cases); i++) {
		vox_qreq q;
		vox_error e;
		assert_int_equal(vox_qreq_parse(&q, ALL_LIST, VOX_QCURSOR_CALLS,
						cases[i].bytes, cases[i].len, &e),
				 VOX_E_DECODE);
		assert_string_equal(e.code, cases[i].reason);
		assert_string_equal(e.field, cases[i].field);
	}
	/* over the size limit: too large, whatever it holds */
	static char big[VOX_QUERY_MAX_REQUEST + 1];
	vox_qreq q;
	char err[200] = "";
	big[0] = (char)0x80;
	assert_int_equal(qparse(&q, ALL_LIST, VOX_QCURSOR_CALLS, big, sizeof(big),
					err, sizeof(err)),
			 VOX_E_TOO_LARGE);
	assert_string_equal(err, "request of 4097 bytes is over the 4096 byte limit");
	assert_int_equal(qparse(&q, ALL_LIST, VOX_QCURSOR_CALLS, big,
					VOX_QUERY_MAX_REQUEST, err, sizeof(err)),
			 VOX_E_DECODE); /* at the limit: read, and refused as two maps */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cursor_round_trip),
		cmocka_unit_test(test_cursor_refuses_garbage),
		cmocka_unit_test(test_empty_and_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_nil_is_absent),
		cmocka_unit_test(test_a_key_given_twice_is_refused),
		cmocka_unit_test(test_refusals_name_the_field),
		cmocka_unit_test(test_not_a_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
