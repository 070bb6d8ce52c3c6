/*
 * Properties of the event codec over generated values: decode(encode(x))
 * == x for every kind, msgpack-c (an independent decoder) reads what we
 * write, anything the decoder accepts can be re-encoded, and mutated or
 * truncated input never crashes and always yields a named error.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <msgpack.h>

#include "core/codec.h"
#include "vox/event.h"
#include "vox/subjects.h"

#define ITERATIONS 3000

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure replays */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static int64_t rnd_range(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* Storage for generated strings: views point in here. */
static char arena[1 << 20];
static size_t arena_used;

static vox_str gen_ascii(size_t minlen, size_t maxlen, char lo)
{
	size_t n = (size_t)rnd_range((int64_t)minlen, (int64_t)maxlen);
	char *p = arena + arena_used;
	for (size_t i = 0; i < n; i++)
		p[i] = (char)rnd_range(lo, 0x7e);
	arena_used += n;
	return (vox_str){p, n};
}

static vox_str gen_text(size_t maxlen)
{
	static const char *pieces[] = {"a", "Z", " ", "\"", "\\", "\n", "\x01",
				       "\x7f", "\xc3\xa9", "\xe2\x82\xac",
				       "\xf0\x9f\x93\x9e", "caf\xc3\xa9", "0"};
	size_t target = (size_t)rnd_range(0, (int64_t)maxlen);
	char *p = arena + arena_used;
	size_t n = 0;
	while (n < target) {
		const char *piece = pieces[rnd() % VOX_NELEM(pieces)];
		size_t k = strlen(piece);
		if (n + k > maxlen)
			break;
		memcpy(p + n, piece, k);
		n += k;
	}
	arena_used += n;
	return (vox_str){p, n};
}

static vox_str gen_phone(void)
{
	size_t digits = (size_t)rnd_range(8, 15);
	char *p = arena + arena_used;
	p[0] = '+';
	p[1] = (char)rnd_range('1', '9');
	for (size_t i = 2; i <= digits; i++)
		p[i] = (char)rnd_range('0', '9');
	arena_used += digits + 1;
	return (vox_str){p, digits + 1};
}

static void gen_uuid(vox_uuid *u)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 36; i++)
		u->s[i] = (i == 8 || i == 13 || i == 18 || i == 23)
			? '-' : hex[rnd() % 16];
	u->s[36] = '\0';
}

static vox_time gen_time(void)
{
	vox_time t = {rnd_range(946684800LL, 4102444799LL), 0, true};
	if (rnd() % 2)
		t.nsec = (int32_t)rnd_range(0, 999999999);
	return t;
}

static bool maybe(void)
{
	return rnd() % 2;
}

static void gen_event(vox_event *ev, vox_event_kind kind)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	switch (kind) {
	case VOX_CALL_STARTED: {
		vox_call_started *e = &ev->u.call_started;
		e->event_id = gen_ascii(1, 128, 0x20);
		gen_uuid(&e->org_id);
		gen_uuid(&e->call_id);
		if (maybe())
			e->vapi_call_id = gen_ascii(1, 255, 0x21);
		e->direction = (vox_direction)rnd_range(1, 2);
		e->from_number = gen_phone();
		e->to_number = gen_phone();
		if (maybe())
			e->caller_name = gen_text(200);
		if (maybe())
			gen_uuid(&e->contact_id);
		e->started_at = gen_time();
		break;
	}
	case VOX_CALL_ENDED: {
		vox_call_ended *e = &ev->u.call_ended;
		e->event_id = gen_ascii(1, 128, 0x20);
		gen_uuid(&e->org_id);
		gen_uuid(&e->call_id);
		e->ended_at = gen_time();
		e->duration_seconds = maybe() ? rnd_range(0, 86400)
					      : (maybe() ? 0 : 86400);
		e->status = (vox_call_status)rnd_range(1, 2);
		if (maybe())
			e->direction = (vox_direction)rnd_range(1, 2);
		if (maybe())
			e->from_number = gen_phone();
		if (maybe())
			e->to_number = gen_phone();
		if (maybe())
			e->started_at = gen_time();
		if (maybe())
			e->transcript = gen_text(2000);
		if (maybe())
			e->summary = gen_text(300);
		if (maybe())
			e->recording_url = gen_text(100);
		if (maybe())
			e->sentiment_summary = gen_text(100);
		if (maybe())
			e->sentiment_label = (vox_sentiment)rnd_range(1, 3);
		if (maybe()) {
			e->has_sentiment_score = true;
			e->sentiment_score = (double)(rnd() % 1000001) / 1000000.0;
		}
		if (maybe())
			e->sentiment_urgency = (vox_urgency)rnd_range(1, 4);
		break;
	}
	case VOX_PAYMENT_SUCCEEDED: {
		vox_payment_succeeded *e = &ev->u.payment_succeeded;
		e->event_id = gen_ascii(1, 128, 0x20);
		gen_uuid(&e->org_id);
		e->stripe_payment_intent_id = gen_ascii(1, 255, 0x21);
		e->amount_pence = rnd_range(1, 100000000);
		if (maybe())
			e->description = gen_text(1000);
		e->occurred_at = gen_time();
		break;
	}
	case VOX_PAYMENT_REFUNDED: {
		vox_payment_refunded *e = &ev->u.payment_refunded;
		e->event_id = gen_ascii(1, 128, 0x20);
		gen_uuid(&e->org_id);
		e->stripe_refund_id = gen_ascii(1, 255, 0x21);
		e->stripe_payment_intent_id = gen_ascii(1, 255, 0x21);
		e->amount_pence = rnd_range(1, 100000000);
		e->occurred_at = gen_time();
		break;
	}
	case VOX_LEAD_SCORED: {
		vox_lead_scored *e = &ev->u.lead_scored;
		e->event_id = gen_ascii(1, 128, 0x20);
		gen_uuid(&e->org_id);
		int which = (int)rnd_range(0, 2);
		if (which != 1)
			gen_uuid(&e->contact_id);
		if (which != 0)
			e->phone = gen_phone();
		if (maybe())
			gen_uuid(&e->call_id);
		e->lead_score = rnd_range(0, 100);
		if (maybe())
			e->lead_status = (vox_lead_status)rnd_range(1, 4);
		if (maybe())
			e->lead_name = gen_text(200);
		if (maybe())
			e->service_interest = gen_text(500);
		if (maybe())
			e->summary = gen_text(500);
		e->scored_at = gen_time();
		break;
	}
	case VOX_ALERT_HOT_LEAD: {
		vox_alert_hot_lead *e = &ev->u.hot_lead;
		gen_uuid(&e->alert_id);
		gen_uuid(&e->org_id);
		gen_uuid(&e->contact_id);
		if (maybe())
			gen_uuid(&e->call_id);
		if (maybe())
			e->lead_name = gen_text(200);
		if (maybe())
			e->lead_phone = gen_phone();
		e->lead_score = rnd_range(70, 100);
		e->urgency_level = e->lead_score >= 80 ? VOX_URGENCY_HIGH
						       : VOX_URGENCY_MEDIUM;
		if (maybe())
			e->service_interest = gen_text(200);
		if (maybe())
			e->summary = gen_text(500);
		e->created_at = gen_time();
		break;
	}
	default: {
		vox_alert_wallet *e = &ev->u.wallet;
		gen_uuid(&e->alert_id);
		gen_uuid(&e->org_id);
		e->debt_limit_pence = rnd_range(0, 100000);
		e->balance_pence = rnd_range(-e->debt_limit_pence, 100000);
		e->amount_pence = rnd_range(0, 100000);
		if (rnd() % 4 == 0) {
			/* what bigint wallets hold, up to the ends of int64 */
			e->debt_limit_pence = INT64_MAX - rnd_range(0, 1000000);
			e->balance_pence = maybe() ? INT64_MIN + rnd_range(0, 1000000)
						   : INT64_MAX - rnd_range(0, 1000000);
			e->amount_pence = INT64_MAX - rnd_range(0, 1000000);
		}
		if (maybe())
			gen_uuid(&e->call_id);
		e->created_at = gen_time();
		break;
	}
	}
}

/* msgpack-c, an independent decoder, must see a map with string keys. */
static void check_with_msgpack_c(const unsigned char *buf, size_t len)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	assert_int_equal(msgpack_unpack_next(&u, (const char *)buf, len, &off),
			 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, len);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < u.data.via.map.size; i++)
		assert_int_equal(u.data.via.map.ptr[i].key.type, MSGPACK_OBJECT_STR);
	msgpack_unpacked_destroy(&u);
}

static void test_round_trip_generated(void **state)
{
	(void)state;
	for (int i = 0; i < ITERATIONS; i++) {
		arena_used = 0;
		vox_event ev, back;
		vox_error err;
		vox_event_kind kind = (vox_event_kind)(i % VOX_EVENT_KIND_COUNT);
		gen_event(&ev, kind);
		unsigned char *buf = NULL;
		size_t len = 0;
		if (vox_event_encode(&buf, &len, &ev, &err) != VOX_OK)
			fail_msg("iteration %d: encode failed: %s", i, err.message);
		check_with_msgpack_c(buf, len);
		assert_int_equal(vox_event_decode(&back, kind, buf, len, &err), VOX_OK);
		char *a = vox_event_to_json(&ev);
		char *b = vox_event_to_json(&back);
		assert_string_equal(a, b);
		/* numeric fields compared directly too, not only through JSON */
		if (kind == VOX_CALL_ENDED) {
			assert_int_equal(ev.u.call_ended.duration_seconds,
					 back.u.call_ended.duration_seconds);
			assert_true(ev.u.call_ended.sentiment_score ==
				    back.u.call_ended.sentiment_score);
			assert_int_equal(ev.u.call_ended.ended_at.nsec,
					 back.u.call_ended.ended_at.nsec);
		}
		free(a);
		free(b);
		free(buf);
	}
}

static void test_mutations_never_crash(void **state)
{
	(void)state;
	int accepted = 0, rejected = 0;
	for (int i = 0; i < ITERATIONS; i++) {
		arena_used = 0;
		vox_event ev, out;
		vox_error err;
		vox_event_kind kind = (vox_event_kind)(i % VOX_EVENT_KIND_COUNT);
		gen_event(&ev, kind);
		unsigned char *buf = NULL;
		size_t len = 0;
		assert_int_equal(vox_event_encode(&buf, &len, &ev, &err), VOX_OK);
		for (int m = 0; m < 20; m++) {
			unsigned char *copy = vox_malloc(len + 1);
			memcpy(copy, buf, len);
			size_t n = len;
			switch (rnd() % 3) {
			case 0:
				copy[rnd() % len] ^= (unsigned char)(1u << (rnd() % 8));
				break;
			case 1:
				n = rnd() % len; /* truncate */
				break;
			default:
				copy[rnd() % len] = (unsigned char)rnd();
				break;
			}
			memset(&err, 0, sizeof(err));
			if (vox_event_decode(&out, kind, copy, n, &err) == VOX_OK) {
				/* whatever is accepted can be sent again */
				unsigned char *again = NULL;
				size_t alen = 0;
				assert_int_equal(vox_event_encode(&again, &alen, &out, &err),
						 VOX_OK);
				free(again);
				accepted++;
			} else {
				assert_non_null(err.code);
				assert_true(strlen(err.message) > 0);
				assert_true(err.status == VOX_E_DECODE ||
					    err.status == VOX_E_INVALID ||
					    err.status == VOX_E_TOO_LARGE);
				rejected++;
			}
			free(copy);
		}
		free(buf);
	}
	/* both outcomes occur, or the mutations are not exercising much */
	assert_true(accepted > 0);
	assert_true(rejected > 0);
}

static void test_errors_name_the_field(void **state)
{
	(void)state;
	arena_used = 0;
	vox_event ev, out;
	vox_error err;
	gen_event(&ev, VOX_CALL_ENDED);
	ev.u.call_ended.duration_seconds = 86401;
	unsigned char *buf = NULL;
	size_t len;
	assert_int_equal(vox_event_encode(&buf, &len, &ev, &err), VOX_E_INVALID);
	assert_string_equal(err.code, "out_of_range");
	assert_string_equal(err.field, "duration_seconds");
	assert_string_equal(err.message, "duration_seconds: must be 0..86400");
	assert_null(buf);

	gen_event(&ev, VOX_CALL_STARTED);
	ev.u.call_started.from_number = (vox_str){"07700900123", 11};
	assert_int_equal(vox_event_encode(&buf, &len, &ev, &err), VOX_E_INVALID);
	assert_string_equal(err.code, "bad_phone");
	assert_non_null(strstr(err.message, "from_number: must be E.164"));

	/* an oversized message is refused before it is parsed */
	static unsigned char huge[VOX_MAX_MESSAGE + 1];
	assert_int_equal(vox_event_decode(&out, VOX_CALL_ENDED, huge, sizeof(huge), &err),
			 VOX_E_TOO_LARGE);
	assert_string_equal(err.code, "too_large");
}

static void test_subject_must_match_org(void **state)
{
	(void)state;
	arena_used = 0;
	vox_event ev, out;
	vox_error err;
	gen_event(&ev, VOX_PAYMENT_SUCCEEDED);
	unsigned char *buf = NULL;
	size_t len;
	assert_int_equal(vox_event_encode(&buf, &len, &ev, &err), VOX_OK);
	char subj[128];
	assert_true(vox_subject_format(subj, sizeof(subj), VOX_PAYMENT_SUCCEEDED,
				       ev.u.payment_succeeded.org_id.s));
	assert_int_equal(vox_event_decode_subject(&out, subj, buf, len, &err), VOX_OK);
	assert_int_equal(out.kind, VOX_PAYMENT_SUCCEEDED);
	/* upper-case token is the same org */
	for (char *p = strrchr(subj, '.') + 1; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(vox_event_decode_subject(&out, subj, buf, len, &err), VOX_OK);
	assert_true(vox_subject_format(subj, sizeof(subj), VOX_PAYMENT_SUCCEEDED,
				       "00000000-0000-4000-8000-000000000000"));
	assert_int_equal(vox_event_decode_subject(&out, subj, buf, len, &err),
			 VOX_E_ORG_MISMATCH);
	assert_string_equal(err.code, "org_mismatch");
	/* right org, wrong kind of subject */
	snprintf(subj, sizeof(subj), "payment.refunded.%s",
		 ev.u.payment_succeeded.org_id.s);
	assert_int_not_equal(vox_event_decode_subject(&out, subj, buf, len, &err), VOX_OK);
	assert_int_equal(vox_event_decode_subject(&out, "nope.x", buf, len, &err),
			 VOX_E_INVALID);
	assert_string_equal(err.code, "unknown_subject");
	free(buf);
}

/* Integer milliseconds near INT64_MIN once overflowed while being
 * converted (UBSan caught it); they must be refused as out of range. */
static void test_extreme_millisecond_timestamps(void **state)
{
	(void)state;
	static const unsigned char head[] =
		"\x81\xa8" "ended_at" "\xd3";
	static const unsigned char values[][8] = {
		{0x80, 0, 0, 0, 0, 0, 0, 0},         /* INT64_MIN */
		{0x80, 0, 0, 0, 0, 0, 0, 1},         /* INT64_MIN + 1 */
		{0x80, 0, 0, 0, 0, 0, 0x03, 0x27},   /* INT64_MIN + 807 */
		{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* INT64_MAX */
	};
	for (size_t i = 0; i < VOX_NELEM(values); i++) {
		unsigned char msg[64];
		size_t n = sizeof(head) - 1;
		memcpy(msg, head, n);
		memcpy(msg + n, values[i], 8);
		vox_event out;
		vox_error err;
		assert_int_equal(vox_event_decode(&out, VOX_CALL_ENDED, msg, n + 8, &err),
				 VOX_E_INVALID);
		assert_string_equal(err.code, "out_of_range");
		assert_string_equal(err.field, "ended_at");
	}
}

static void test_msg_id_and_names(void **state)
{
	(void)state;
	arena_used = 0;
	vox_event ev;
	gen_event(&ev, VOX_LEAD_SCORED);
	vox_str id = vox_event_msg_id(&ev);
	assert_ptr_equal(id.ptr, ev.u.lead_scored.event_id.ptr);
	gen_event(&ev, VOX_ALERT_DEBT_LIMIT);
	id = vox_event_msg_id(&ev);
	assert_int_equal(id.len, 36);
	assert_memory_equal(id.ptr, ev.u.wallet.alert_id.s, 36);
	assert_string_equal(vox_event_kind_name(VOX_ALERT_HOT_LEAD), "alert.hot_lead");
	assert_string_equal(vox_event_kind_stream(VOX_CALL_ENDED), "EVENTS");
	assert_string_equal(vox_event_kind_stream(VOX_ALERT_LOW_BALANCE), "ALERTS");
	assert_null(vox_event_kind_name(VOX_EVENT_KIND_COUNT));
}

/* A value an actor did not decode (a stored contact's phone or name) is
 * checked with the field's own rules before it goes into a message. */
static void test_str_fits_the_field_rules(void **state)
{
	(void)state;
	char long_name[202];
	memset(long_name, 'a', sizeof(long_name));
	vox_str ok_phone = {"+447700900123", 13};
	vox_str legacy_phone = {"07700 900123", 12};
	assert_true(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_phone", ok_phone));
	assert_false(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_phone", legacy_phone));
	assert_false(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_phone",
					(vox_str){"+0123456789", 11}));
	assert_true(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_name",
				       (vox_str){long_name, 200}));
	assert_false(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_name",
					(vox_str){long_name, 201}));
	assert_true(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_name", (vox_str){"", 0}));
	assert_false(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_name",
					(vox_str){"a\0b", 3}));
	assert_false(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_name",
					(vox_str){"\xc0\xaf", 2}));
	assert_true(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_name",
				       (vox_str){"Zo\xc3\xab", 4}));
	/* absent, unknown key, not a string field */
	assert_false(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_name", (vox_str){NULL, 0}));
	assert_false(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "nope", ok_phone));
	assert_false(vox_event_str_fits(VOX_ALERT_HOT_LEAD, "lead_score", ok_phone));
	assert_false(vox_event_str_fits(VOX_EVENT_KIND_COUNT, "lead_phone", ok_phone));
	/* ids keep their own rules */
	assert_true(vox_event_str_fits(VOX_PAYMENT_SUCCEEDED, "stripe_payment_intent_id",
				       (vox_str){"pi_1", 4}));
	assert_false(vox_event_str_fits(VOX_PAYMENT_SUCCEEDED, "stripe_payment_intent_id",
					(vox_str){"pi 1", 4}));
}

/* RFC 3339 text to a time and back (voxctl reads timestamps as text). */
static void test_rfc3339_parse(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int64_t sec;
		int32_t nsec;
	} good[] = {
		{"1970-01-01T00:00:00Z", 0, 0},
		{"2026-11-24T10:00:00.123Z", 1795514400, 123000000},
		{"2026-11-24T11:00:00.123456789+01:00", 1795514400, 123456789},
		{"2026-11-24t05:30:00-04:30", 1795514400, 0},
		{"2000-02-29T00:00:00Z", 951782400, 0},
		{"1969-12-31T23:59:59.5Z", -1, 500000000},
	};
	for (size_t i = 0; i < VOX_NELEM(good); i++) {
		vox_time t;
		assert_true(vox_time_parse_rfc3339(&t, good[i].text, strlen(good[i].text)));
		assert_int_equal(t.sec, good[i].sec);
		assert_int_equal(t.nsec, good[i].nsec);
		assert_true(t.set);
		char back[64];
		vox_time_rfc3339(back, &t);
		if (good[i].sec >= 0) {
			vox_time u;
			assert_true(vox_time_parse_rfc3339(&u, back, strlen(back)));
			assert_int_equal(u.sec, t.sec);
			assert_int_equal(u.nsec, t.nsec);
		}
	}
	static const char *const bad[] = {
		"", "2026-11-24", "2026-11-24T10:00:00", "2026-11-24 10:00:00Z",
		"2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z",
		"2026-11-24T24:00:00Z", "2026-11-24T10:60:00Z", "2026-11-24T10:00:60Z",
		"2026-11-24T10:00:00.Z", "2026-11-24T10:00:00.1234567890Z",
		"2026-11-24T10:00:00+0100", "2026-11-24T10:00:00Zx", "1795514400",
		"2026-1-24T10:00:00Z",
	};
	for (size_t i = 0; i < VOX_NELEM(bad); i++) {
		vox_time t;
		if (vox_time_parse_rfc3339(&t, bad[i], strlen(bad[i])))
			fprintf(stderr, "accepted %s\n", bad[i]);
		assert_false(vox_time_parse_rfc3339(&t, bad[i], strlen(bad[i])));
	}
	assert_true(vox_event_key_is_time(VOX_CALL_ENDED, "ended_at", 8));
	assert_true(vox_event_key_is_time(VOX_CALL_ENDED, "started_at", 10));
	assert_false(vox_event_key_is_time(VOX_CALL_ENDED, "ended", 5));
	assert_false(vox_event_key_is_time(VOX_CALL_ENDED, "duration_seconds", 16));
	assert_true(vox_event_key_is_time(VOX_PAYMENT_SUCCEEDED, "occurred_at", 11));
}

/* Vox-Schema: absent and "1" are read; another version is refused by
 * name, never decoded as version 1. */
static void test_schema_versions(void **state)
{
	(void)state;
	vox_error err;
	assert_int_equal(vox_schema_version_check(&err, NULL), VOX_OK);
	assert_int_equal(vox_schema_version_check(&err, "1"), VOX_OK);
	const char *other[] = {"2", "", "1.0", "01", "v1"};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(vox_schema_version_check(&err, other[i]), VOX_E_INVALID);
		assert_string_equal(err.code, "unknown_schema");
		assert_string_equal(err.field, "Vox-Schema");
		assert_non_null(strstr(err.message, "is not one this actor reads"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_generated),
		cmocka_unit_test(test_mutations_never_crash),
		cmocka_unit_test(test_errors_name_the_field),
		cmocka_unit_test(test_subject_must_match_org),
		cmocka_unit_test(test_extreme_millisecond_timestamps),
		cmocka_unit_test(test_msg_id_and_names),
		cmocka_unit_test(test_rfc3339_parse),
		cmocka_unit_test(test_str_fits_the_field_rules),
		cmocka_unit_test(test_schema_versions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
