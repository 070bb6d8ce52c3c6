/*
 * billing.authorize's request (core/authorize.c): the cases of its
 * document, the limits it shares with the other decoders (4 KiB, 32
 * levels, length prefixes beyond the input), and generated requests
 * checked against a verdict computed here from what was packed, plus
 * mutations of them that must never be accepted wrongly or crash.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <msgpack.h>

#include "../fuzz/fuzz_props.h"
#include "core/authorize.h"

#define CALL "5b1d7e2a-3c4f-4a8b-9c0d-1e2f3a4b5c6d"

static vox_status parse(const void *data, size_t len, vox_authorize_req *out,
			vox_error *err)
{
	vox_status st = vox_authorize_parse(out, data, len, err);
	/* whatever the input: the fuzz target's properties hold */
	assert_true(vox_fuzz_authorize_request(data, len));
	return st;
}

/* Parse a literal; expect a refusal for reason (the Vox-Error-Reason of
 * the reply) with text in its message. */
static void expect(const char *data, size_t len, const char *reason,
		   const char *text)
{
	vox_authorize_req r;
	vox_error err = {0};
	memset(&r, 0x5a, sizeof(r));
	vox_status st = parse(data, len, &r, &err);
	if (st == VOX_OK || strcmp(err.code, reason) != 0 ||
	    !strstr(err.message, text))
		fprintf(stderr, "input of %zu bytes: want %s \"%s\", got %s %s"
			" \"%s\"\n", len, reason, text, vox_status_str(st),
			st == VOX_OK ? "-" : err.code, err.message);
	assert_int_not_equal(st, VOX_OK);
	assert_int_equal(err.status, st);
	assert_string_equal(err.code, reason);
	assert_non_null(strstr(err.message, text));
	/* untouched on failure */
	assert_int_equal((unsigned char)r.call_id.s[0], 0x5a);
}

#define LIT(s) (s), sizeof(s) - 1

static void test_valid_requests(void **state)
{
	(void)state;
	vox_authorize_req r;
	vox_error err;
	assert_int_equal(parse("", 0, &r, &err), VOX_OK);
	assert_string_equal(r.call_id.s, "");
	assert_int_equal(parse(LIT("\x80"), &r, &err), VOX_OK);
	assert_string_equal(r.call_id.s, "");
	assert_int_equal(parse(LIT("\x81\xa7" "call_id" "\xd9\x24" CALL), &r, &err), VOX_OK);
	assert_string_equal(r.call_id.s, CALL);
	/* upper case normalised; fixstr, str8 and str16 forms */
	assert_int_equal(parse(LIT("\x81\xa7" "call_id" "\xda\x00\x24"
				   "5B1D7E2A-3C4F-4A8B-9C0D-1E2F3A4B5C6D"), &r, &err), VOX_OK);
	assert_string_equal(r.call_id.s, CALL);
	/* nil is absent */
	assert_int_equal(parse(LIT("\x81\xa7" "call_id" "\xc0"), &r, &err),
			 VOX_OK);
	assert_string_equal(r.call_id.s, "");
	/* unknown keys of any type are ignored, nested up to 32 levels */
	static const char nested[] = "\x83\xa1x\x91\x91\x91\x90\xa1y\x82\xa1" "a\x01\xa1"
		"b\xc3\xa7" "call_id" "\xd9\x24" CALL;
	assert_int_equal(parse(LIT(nested), &r, &err), VOX_OK);
	assert_string_equal(r.call_id.s, CALL);
	char deep[64];
	size_t n = 0;
	deep[n++] = (char)0x81;
	deep[n++] = (char)0xa1;
	deep[n++] = 'x';
	for (int i = 0; i < 31; i++)
		deep[n++] = (char)0x91;
	deep[n++] = (char)0x90;
	assert_int_equal(parse(deep, n, &r, &err), VOX_OK);
	/* an org_id in the body is ignored: the subject names the org */
	assert_int_equal(parse(LIT("\x81\xa6org_id\xa1z"), &r, &err), VOX_OK);
}

static void test_refused_requests(void **state)
{
	(void)state;
	expect(LIT("\x91\x01"), "not_a_map", "request must be a msgpack map");
	expect(LIT("\x01"), "not_a_map", "must be a msgpack map");
	expect(LIT("\xa1x"), "not_a_map", "must be a msgpack map");
	expect(LIT("\xc0"), "not_a_map", "must be a msgpack map");
	expect(LIT("\xc1\xc1"), "not_a_map", "must be a msgpack map");
	expect(LIT("\x80\x80"), "trailing_bytes", "1 bytes after the map");
	expect(LIT("\x80\x00"), "trailing_bytes", "after the map");
	/* call_id of every wrong kind */
	expect(LIT("\x81\xa7" "call_id" "\x01"), "wrong_type", "call_id: must be a string");
	expect(LIT("\x81\xa7" "call_id" "\xa3" "abc"), "bad_uuid", "call_id: must be a UUID");
	expect(LIT("\x81\xa7" "call_id" "\xc4\x24" CALL), "wrong_type", "call_id: must be a string");
	expect(LIT("\x81\xa7" "call_id" "\xd9\x24" "5b1d7e2a-3c4f-4a8b-9c0d-1e2f3a4b5c6g"),
	       "bad_uuid", "call_id: must be a UUID");
	expect(LIT("\x81\xa7" "call_id" "\xd9\x23" "5b1d7e2a-3c4f-4a8b-9c0d-1e2f3a4b5c6"),
	       "bad_uuid", "call_id: must be a UUID");
	expect(LIT("\x81\xa7" "call_id" "\x91\xa1x"), "wrong_type", "call_id: must be a string");
	/* once only, also after a nil */
	expect(LIT("\x82\xa7" "call_id" "\xd9\x24" CALL "\xa7" "call_id" "\xd9\x24" CALL),
	       "duplicate_key", "call_id: appears twice");
	expect(LIT("\x82\xa7" "call_id" "\xc0\xa7" "call_id" "\xd9\x24" CALL),
	       "duplicate_key", "call_id: appears twice");
	/* keys are strings */
	expect(LIT("\x81\x01\x02"), "bad_key", "map key 0 is not a string");
	expect(LIT("\x81\xc1\xc0"), "malformed", "0xc1");
	/* length prefixes beyond the input, cuts */
	expect(LIT("\xdf\xff\xff\xff\xff"), "truncated", "ends in the middle");
	expect(LIT("\x82\xa1x\x01"), "truncated", "ends in the middle");
	expect(LIT("\x81\xa1x\xdb\xff\xff\xff\xff"), "truncated", "ends in the middle");
	expect(LIT("\x81\xa1x\xdd\xff\xff\xff\xff\x00"), "truncated", "ends in the middle");
	expect(LIT("\x81\xa7" "call_id" "\xd9\x24" "5b1d7e2a"), "truncated", "call_id: ");
	expect(LIT("\x81\xa7" "call_i"), "truncated", "ends in the middle");
	expect(LIT("\x82\xa1x\x01\xa1y"), "truncated", "ends in the middle");
	expect(LIT("\x81\xa1x\xc1"), "malformed", "0xc1");
	/* 33 levels (as the event decoder counts them: tests/fuzz/regress's
	 * edge-nest-33) */
	char deep[64];
	size_t n = 0;
	deep[n++] = (char)0x81;
	deep[n++] = (char)0xa1;
	deep[n++] = 'x';
	for (int i = 0; i < 33; i++)
		deep[n++] = (char)0x91;
	deep[n++] = 0x00;
	expect(deep, n, "too_deep", "nested deeper than 32 levels");
}

/* 4,096 bytes are read; one more is 413, whatever the bytes. */
static void test_size_limit(void **state)
{
	(void)state;
	char *buf = vox_malloc(VOX_AUTHORIZE_MAX_REQUEST + 1);
	/* {"x": str16 of the rest} */
	size_t body = VOX_AUTHORIZE_MAX_REQUEST - 6;
	buf[0] = (char)0x81;
	buf[1] = (char)0xa1;
	buf[2] = 'x';
	buf[3] = (char)0xda;
	buf[4] = (char)(body >> 8);
	buf[5] = (char)(body & 0xff);
	memset(buf + 6, 'p', body);
	vox_authorize_req r;
	vox_error err;
	assert_int_equal(parse(buf, VOX_AUTHORIZE_MAX_REQUEST, &r, &err), VOX_OK);
	expect(buf, VOX_AUTHORIZE_MAX_REQUEST + 1, "too_large",
	       "request of 4097 bytes is over the 4096 byte limit");
	memset(buf, 0xc1, VOX_AUTHORIZE_MAX_REQUEST + 1);
	expect(buf, VOX_AUTHORIZE_MAX_REQUEST + 1, "too_large", "over the 4096 byte limit");
	free(buf);
}

/* ---- generated requests ---------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

/* Pack a random value (of any type, some nesting) as an ignored value. */
static void pack_any(msgpack_packer *pk, int depth)
{
	switch (rnd() % (depth < 3 ? 8 : 6)) {
	case 0: msgpack_pack_nil(pk); break;
	case 1: msgpack_pack_int64(pk, (int64_t)rnd()); break;
	case 2: msgpack_pack_double(pk, 1.5); break;
	case 3: msgpack_pack_str(pk, 3); msgpack_pack_str_body(pk, "abc", 3); break;
	case 4: msgpack_pack_bin(pk, 2); msgpack_pack_bin_body(pk, "\x00\x01", 2); break;
	case 5: msgpack_pack_true(pk); break;
	case 6: {
		uint32_t n = (uint32_t)(rnd() % 4);
		msgpack_pack_array(pk, n);
		for (uint32_t i = 0; i < n; i++)
			pack_any(pk, depth + 1);
		break;
	}
	default: {
		uint32_t n = (uint32_t)(rnd() % 3);
		msgpack_pack_map(pk, n);
		for (uint32_t i = 0; i < n; i++) {
			pack_any(pk, depth + 1);
			pack_any(pk, depth + 1);
		}
		break;
	}
	}
}

/*
 * Maps of up to 6 entries: unknown keys with any value, sometimes a
 * non-string key, and call_id 0..2 times as a UUID (upper or lower case),
 * nil, a bad string or an integer. The expected verdict is computed from
 * what was packed; the parser must agree, and every cut of an accepted
 * request must be refused (a map is never complete before its end).
 */
static void test_generated_requests(void **state)
{
	(void)state;
	int accepted = 0, refused = 0;
	for (int round = 0; round < 3000; round++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		uint32_t n = (uint32_t)(rnd() % 7);
		bool ok = true;
		int calls = 0;
		char want[37] = "";
		msgpack_pack_map(&pk, n);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t r = rnd() % 10;
			if (r < 5) {
				char key[16];
				int kl = snprintf(key, sizeof(key), "k%u", (unsigned)(rnd() % 50));
				msgpack_pack_str(&pk, (size_t)kl);
				msgpack_pack_str_body(&pk, key, (size_t)kl);
				pack_any(&pk, 0);
			} else if (r < 6) {
				msgpack_pack_int64(&pk, 7);
				pack_any(&pk, 0);
				ok = false;
			} else {
				msgpack_pack_str(&pk, 7);
				msgpack_pack_str_body(&pk, "call_id", 7);
				if (++calls > 1)
					ok = false;
				uint64_t v = rnd() % 4;
				if (v == 0) {
					msgpack_pack_str(&pk, 36);
					msgpack_pack_str_body(&pk, rnd() % 2 ? CALL
						: "5B1D7E2A-3C4F-4A8B-9C0D-1E2F3A4B5C6D", 36);
					snprintf(want, sizeof(want), "%s", CALL);
				} else if (v == 1) {
					msgpack_pack_nil(&pk);
				} else if (v == 2) {
					msgpack_pack_str(&pk, 5);
					msgpack_pack_str_body(&pk, "call1", 5);
					ok = false;
				} else {
					msgpack_pack_int64(&pk, 12);
					ok = false;
				}
			}
		}
		vox_authorize_req req;
		vox_error err = {0};
		vox_status st = parse(sb.data, sb.size, &req, &err);
		if ((st == VOX_OK) != ok)
			fprintf(stderr, "round %d: want %s, got %s (%s)\n", round,
				ok ? "ok" : "refused", vox_status_str(st),
				err.message);
		assert_int_equal(st == VOX_OK, ok);
		if (ok) {
			accepted++;
			/* a nil after a UUID is refused (twice), so the one
			 * call_id seen is the one kept */
			if (calls == 1 && want[0])
				assert_string_equal(req.call_id.s, want);
			for (size_t cut = 1; cut < sb.size; cut++) {
				vox_authorize_req c;
				vox_error e2;
				assert_int_equal(parse(sb.data, cut, &c, &e2),
						 VOX_E_DECODE);
				assert_string_equal(e2.code, "truncated");
			}
			/* one byte too many */
			char *more = vox_malloc(sb.size + 1);
			memcpy(more, sb.data, sb.size);
			more[sb.size] = (char)0xc0;
			vox_authorize_req c;
			vox_error e2;
			assert_int_equal(parse(more, sb.size + 1, &c, &e2),
					 VOX_E_DECODE);
			assert_string_equal(e2.code, "trailing_bytes");
			free(more);
		} else {
			refused++;
			assert_int_equal(vox_status_code(st), 400);
			assert_true(err.message[0] != '\0');
		}
		/* random byte flips: any verdict, but a sound one */
		for (int m = 0; m < 8 && sb.size > 0; m++) {
			size_t at = (size_t)(rnd() % sb.size);
			char saved = sb.data[at];
			sb.data[at] = (char)rnd();
			vox_authorize_req c;
			vox_error e2;
			vox_status s2 = parse(sb.data, sb.size, &c, &e2);
			assert_true(s2 == VOX_OK || vox_status_code(s2) == 400);
			sb.data[at] = saved;
		}
		msgpack_sbuffer_destroy(&sb);
	}
	assert_true(accepted > 300);
	assert_true(refused > 300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_requests),
		cmocka_unit_test(test_refused_requests),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_generated_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
