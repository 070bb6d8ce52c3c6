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
			char *err, size_t errlen)
{
	vox_status st = vox_authorize_parse(out, data, len, err, errlen);
	/* whatever the input: the fuzz target's properties hold */
	assert_true(vox_fuzz_authorize_request(data, len));
	return st;
}

/* Parse a literal; expect st and, on failure, text in the reason. */
static void expect(const char *data, size_t len, vox_status want, const char *text)
{
	vox_authorize_req r;
	char err[200] = "";
	memset(&r, 0x5a, sizeof(r));
	vox_status st = parse(data, len, &r, err, sizeof(err));
	if (st != want)
		fprintf(stderr, "input of %zu bytes: want %s, got %s (%s)\n", len,
			vox_status_str(want), vox_status_str(st), err);
	assert_int_equal(st, want);
	if (want != VOX_OK) {
		if (!strstr(err, text))
			fprintf(stderr, "want \"%s\" in \"%s\"\n", text, err);
		assert_non_null(strstr(err, text));
		/* untouched on failure */
		assert_int_equal((unsigned char)r.call_id.s[0], 0x5a);
	}
}

#define LIT(s) (s), sizeof(s) - 1

static void test_valid_requests(void **state)
{
	(void)state;
	vox_authorize_req r;
	char err[200];
	assert_int_equal(parse("", 0, &r, err, sizeof(err)), VOX_OK);
	assert_string_equal(r.call_id.s, "");
	assert_int_equal(parse(LIT("\x80"), &r, err, sizeof(err)), VOX_OK);
	assert_string_equal(r.call_id.s, "");
	assert_int_equal(parse(LIT("\x81\xa7" "call_id" "\xd9\x24" CALL), &r, err,
			       sizeof(err)), VOX_OK);
	assert_string_equal(r.call_id.s, CALL);
	/* upper case normalised; fixstr, str8 and str16 forms */
	assert_int_equal(parse(LIT("\x81\xa7" "call_id" "\xda\x00\x24"
				   "5B1D7E2A-3C4F-4A8B-9C0D-1E2F3A4B5C6D"), &r, err,
			       sizeof(err)), VOX_OK);
	assert_string_equal(r.call_id.s, CALL);
	/* nil is absent */
	assert_int_equal(parse(LIT("\x81\xa7" "call_id" "\xc0"), &r, err, sizeof(err)),
			 VOX_OK);
	assert_string_equal(r.call_id.s, "");
	/* unknown keys of any type are ignored, nested up to 32 levels */
	static const char nested[] = "\x83\xa1x\x91\x91\x91\x90\xa1y\x82\xa1" "a\x01\xa1"
		"b\xc3\xa7" "call_id" "\xd9\x24" CALL;
	assert_int_equal(parse(LIT(nested), &r, err, sizeof(err)), VOX_OK);
	assert_string_equal(r.call_id.s, CALL);
	char deep[64];
	size_t n = 0;
	deep[n++] = (char)0x81;
	deep[n++] = (char)0xa1;
	deep[n++] = 'x';
	for (int i = 0; i < 31; i++)
		deep[n++] = (char)0x91;
	deep[n++] = (char)0x90;
	assert_int_equal(parse(deep, n, &r, err, sizeof(err)), VOX_OK);
	/* an org_id in the body is ignored: the subject names the org */
	assert_int_equal(parse(LIT("\x81\xa6org_id\xa1z"), &r, err, sizeof(err)), VOX_OK);
}

static void test_refused_requests(void **state)
{
	(void)state;
	expect(LIT("\x91\x01"), VOX_E_INVALID, "request: must be a msgpack map");
	expect(LIT("\x01"), VOX_E_INVALID, "must be a msgpack map");
	expect(LIT("\xa1x"), VOX_E_INVALID, "must be a msgpack map");
	expect(LIT("\xc0"), VOX_E_INVALID, "must be a msgpack map");
	expect(LIT("\xc1\xc1"), VOX_E_INVALID, "must be a msgpack map");
	expect(LIT("\x80\x80"), VOX_E_INVALID, "1 bytes after the map");
	expect(LIT("\x80\x00"), VOX_E_INVALID, "after the map");
	/* call_id of every wrong kind */
	expect(LIT("\x81\xa7" "call_id" "\x01"), VOX_E_INVALID, "call_id: must be a UUID");
	expect(LIT("\x81\xa7" "call_id" "\xa3" "abc"), VOX_E_INVALID, "call_id: must be a UUID");
	expect(LIT("\x81\xa7" "call_id" "\xc4\x24" CALL), VOX_E_INVALID, "call_id: must be a UUID");
	expect(LIT("\x81\xa7" "call_id" "\xd9\x24" "5b1d7e2a-3c4f-4a8b-9c0d-1e2f3a4b5c6g"),
	       VOX_E_INVALID, "call_id: must be a UUID");
	expect(LIT("\x81\xa7" "call_id" "\xd9\x23" "5b1d7e2a-3c4f-4a8b-9c0d-1e2f3a4b5c6"),
	       VOX_E_INVALID, "call_id: must be a UUID");
	expect(LIT("\x81\xa7" "call_id" "\x91\xa1x"), VOX_E_INVALID, "call_id: must be a UUID");
	/* once only, also after a nil */
	expect(LIT("\x82\xa7" "call_id" "\xd9\x24" CALL "\xa7" "call_id" "\xd9\x24" CALL),
	       VOX_E_INVALID, "call_id: appears twice");
	expect(LIT("\x82\xa7" "call_id" "\xc0\xa7" "call_id" "\xd9\x24" CALL),
	       VOX_E_INVALID, "call_id: appears twice");
	/* keys are strings */
	expect(LIT("\x81\x01\x02"), VOX_E_INVALID, "keys must be strings");
	expect(LIT("\x81\xc1\xc0"), VOX_E_INVALID, "keys must be strings");
	/* length prefixes beyond the input, cuts */
	expect(LIT("\xdf\xff\xff\xff\xff"), VOX_E_INVALID, "not valid msgpack");
	expect(LIT("\x82\xa1x\x01"), VOX_E_INVALID, "the map is cut short");
	expect(LIT("\x81\xa1x\xdb\xff\xff\xff\xff"), VOX_E_INVALID, "not valid msgpack");
	expect(LIT("\x81\xa1x\xdd\xff\xff\xff\xff\x00"), VOX_E_INVALID, "not valid msgpack");
	expect(LIT("\x81\xa7" "call_id" "\xd9\x24" "5b1d7e2a"), VOX_E_INVALID, "cut short");
	expect(LIT("\x81\xa7" "call_i"), VOX_E_INVALID, "a key is cut short");
	expect(LIT("\x82\xa1x\x01\xa1y"), VOX_E_INVALID, "not valid msgpack");
	expect(LIT("\x81\xa1x\xc1"), VOX_E_INVALID, "not valid msgpack");
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
	expect(deep, n, VOX_E_INVALID, "nested deeper than 32 levels");
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
	expect(buf, VOX_AUTHORIZE_MAX_REQUEST, VOX_OK, NULL);
	expect(buf, VOX_AUTHORIZE_MAX_REQUEST + 1, VOX_E_TOO_LARGE,
	       "request: larger than 4096 bytes");
	memset(buf, 0xc1, VOX_AUTHORIZE_MAX_REQUEST + 1);
	expect(buf, VOX_AUTHORIZE_MAX_REQUEST + 1, VOX_E_TOO_LARGE, "larger than 4096");
	free(buf);
}

/* A short error buffer is filled, never overrun. */
static void test_short_error_buffer(void **state)
{
	(void)state;
	vox_authorize_req r;
	char err[9];
	memset(err, 'z', sizeof(err));
	assert_int_equal(vox_authorize_parse(&r, LIT("\x91\x01"), err, 8), VOX_E_INVALID);
	assert_int_equal(err[7], '\0');
	assert_int_equal(err[8], 'z');
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
		char err[200] = "";
		vox_status st = parse(sb.data, sb.size, &req, err, sizeof(err));
		if ((st == VOX_OK) != ok)
			fprintf(stderr, "round %d: want %s, got %s (%s)\n", round,
				ok ? "ok" : "refused", vox_status_str(st), err);
		assert_int_equal(st == VOX_OK, ok);
		if (ok) {
			accepted++;
			/* a nil after a UUID is refused (twice), so the one
			 * call_id seen is the one kept */
			if (calls == 1 && want[0])
				assert_string_equal(req.call_id.s, want);
			for (size_t cut = 1; cut < sb.size; cut++) {
				vox_authorize_req c;
				char e2[200];
				assert_int_equal(parse(sb.data, cut, &c, e2, sizeof(e2)),
						 VOX_E_INVALID);
				assert_true(e2[0] != '\0');
			}
			/* one byte too many */
			char *more = vox_malloc(sb.size + 1);
			memcpy(more, sb.data, sb.size);
			more[sb.size] = (char)0xc0;
			vox_authorize_req c;
			char e2[200];
			assert_int_equal(parse(more, sb.size + 1, &c, e2, sizeof(e2)),
					 VOX_E_INVALID);
			free(more);
		} else {
			refused++;
			assert_int_equal(st, VOX_E_INVALID);
			assert_true(err[0] != '\0');
		}
		/* random byte flips: any verdict, but a sound one */
		for (int m = 0; m < 8 && sb.size > 0; m++) {
			size_t at = (size_t)(rnd() % sb.size);
			char saved = sb.data[at];
			sb.data[at] = (char)rnd();
			vox_authorize_req c;
			char e2[200];
			vox_status s2 = parse(sb.data, sb.size, &c, e2, sizeof(e2));
			assert_true(s2 == VOX_OK || s2 == VOX_E_INVALID);
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
		cmocka_unit_test(test_short_error_buffer),
		cmocka_unit_test(test_generated_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
