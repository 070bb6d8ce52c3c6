/*
 * event.c - strict decoding, encoding and JSON rendering of the messages of
 * the wire contract. Each message kind is a table of field descriptors
 * (name, kind, required, range, where it lives in the C struct); one
 * table-driven decoder, encoder and JSON writer serve every kind, so a rule
 * is written once and the three can never disagree.
 *
 * Decoding is a single left-to-right pass over the map: the first problem
 * found is the one reported.
 */
#include "vox/event.h"

#include "core/buf.h"
#include "core/codec.h"
#include "core/common.h"
#include "core/mp.h"
#include "vox/subjects.h"

#include <math.h>
#include <msgpack.h>
#include <time.h>

#define MAX_KEYS 256 /* a map with more entries is refused: too_large */

/* Timestamps must fall in [2000-01-01, 2100-01-01). */
#define TS_MIN 946684800LL
#define TS_MAX 4102444800LL

enum fkind {
	F_EVENT_ID, /* 1..128 printable ASCII */
	F_ID,       /* an outside system's key: 1..255 ASCII, no spaces */
	F_TEXT,     /* UTF-8, no NUL, up to max bytes */
	F_UUID,
	F_E164,
	F_TS,
	F_INT,      /* [min, max] */
	F_FLOAT,    /* [min, max], presence flag at has_off */
	F_ENUM,     /* one of choices; C value is index + 1 */
};

typedef struct field {
	const char *key;
	enum fkind kind;
	bool required;
	int64_t min, max;
	const char *const *choices;
	size_t off;
	size_t has_off; /* F_FLOAT only */
} field;

typedef struct kind_def {
	const field *fields;
	size_t nfields;
	size_t org_off; /* offset of the org_id vox_uuid */
} kind_def;

static const char *const directions[] = {"inbound", "outbound", NULL};
static const char *const call_statuses[] = {"completed", "failed", NULL};
static const char *const sentiments[] = {"positive", "neutral", "negative", NULL};
static const char *const urgencies[] = {"low", "medium", "high", "critical", NULL};
static const char *const lead_statuses[] = {"hot", "warm", "cold", "contacted", NULL};

#define TEXT_SHORT 200          /* names */
#define TEXT_URL 2048
#define TEXT_SUMMARY (16 * 1024)
#define TEXT_TRANSCRIPT (512 * 1024)
#define MONEY_MAX 100000000LL

#define REQ(k, kind, ...) {k, kind, true, __VA_ARGS__}
#define OPT(k, kind, ...) {k, kind, false, __VA_ARGS__}

#define CS(f) offsetof(vox_call_started, f)
static const field call_started_fields[] = {
	REQ("event_id", F_EVENT_ID, 0, 0, NULL, CS(event_id), 0),
	REQ("org_id", F_UUID, 0, 0, NULL, CS(org_id), 0),
	REQ("call_id", F_UUID, 0, 0, NULL, CS(call_id), 0),
	OPT("vapi_call_id", F_ID, 0, 0, NULL, CS(vapi_call_id), 0),
	REQ("direction", F_ENUM, 0, 0, directions, CS(direction), 0),
	REQ("from_number", F_E164, 0, 0, NULL, CS(from_number), 0),
	REQ("to_number", F_E164, 0, 0, NULL, CS(to_number), 0),
	OPT("caller_name", F_TEXT, 0, TEXT_SHORT, NULL, CS(caller_name), 0),
	OPT("contact_id", F_UUID, 0, 0, NULL, CS(contact_id), 0),
	REQ("started_at", F_TS, 0, 0, NULL, CS(started_at), 0),
};

#define CE(f) offsetof(vox_call_ended, f)
static const field call_ended_fields[] = {
	REQ("event_id", F_EVENT_ID, 0, 0, NULL, CE(event_id), 0),
	REQ("org_id", F_UUID, 0, 0, NULL, CE(org_id), 0),
	REQ("call_id", F_UUID, 0, 0, NULL, CE(call_id), 0),
	REQ("ended_at", F_TS, 0, 0, NULL, CE(ended_at), 0),
	REQ("duration_seconds", F_INT, 0, 86400, NULL, CE(duration_seconds), 0),
	REQ("status", F_ENUM, 0, 0, call_statuses, CE(status), 0),
	OPT("direction", F_ENUM, 0, 0, directions, CE(direction), 0),
	OPT("from_number", F_E164, 0, 0, NULL, CE(from_number), 0),
	OPT("to_number", F_E164, 0, 0, NULL, CE(to_number), 0),
	OPT("started_at", F_TS, 0, 0, NULL, CE(started_at), 0),
	OPT("transcript", F_TEXT, 0, TEXT_TRANSCRIPT, NULL, CE(transcript), 0),
	OPT("summary", F_TEXT, 0, TEXT_SUMMARY, NULL, CE(summary), 0),
	OPT("recording_url", F_TEXT, 0, TEXT_URL, NULL, CE(recording_url), 0),
	OPT("sentiment_summary", F_TEXT, 0, TEXT_SUMMARY, NULL, CE(sentiment_summary), 0),
	OPT("sentiment_label", F_ENUM, 0, 0, sentiments, CE(sentiment_label), 0),
	OPT("sentiment_score", F_FLOAT, 0, 1, NULL, CE(sentiment_score), CE(has_sentiment_score)),
	OPT("sentiment_urgency", F_ENUM, 0, 0, urgencies, CE(sentiment_urgency), 0),
};

#define PS(f) offsetof(vox_payment_succeeded, f)
static const field payment_succeeded_fields[] = {
	REQ("event_id", F_EVENT_ID, 0, 0, NULL, PS(event_id), 0),
	REQ("org_id", F_UUID, 0, 0, NULL, PS(org_id), 0),
	REQ("stripe_payment_intent_id", F_ID, 0, 0, NULL, PS(stripe_payment_intent_id), 0),
	REQ("amount_pence", F_INT, 1, MONEY_MAX, NULL, PS(amount_pence), 0),
	OPT("description", F_TEXT, 0, TEXT_SHORT * 5, NULL, PS(description), 0),
	REQ("occurred_at", F_TS, 0, 0, NULL, PS(occurred_at), 0),
};

#define PR(f) offsetof(vox_payment_refunded, f)
static const field payment_refunded_fields[] = {
	REQ("event_id", F_EVENT_ID, 0, 0, NULL, PR(event_id), 0),
	REQ("org_id", F_UUID, 0, 0, NULL, PR(org_id), 0),
	REQ("stripe_refund_id", F_ID, 0, 0, NULL, PR(stripe_refund_id), 0),
	REQ("stripe_payment_intent_id", F_ID, 0, 0, NULL, PR(stripe_payment_intent_id), 0),
	REQ("amount_pence", F_INT, 1, MONEY_MAX, NULL, PR(amount_pence), 0),
	REQ("occurred_at", F_TS, 0, 0, NULL, PR(occurred_at), 0),
};

#define LS(f) offsetof(vox_lead_scored, f)
static const field lead_scored_fields[] = {
	REQ("event_id", F_EVENT_ID, 0, 0, NULL, LS(event_id), 0),
	REQ("org_id", F_UUID, 0, 0, NULL, LS(org_id), 0),
	OPT("contact_id", F_UUID, 0, 0, NULL, LS(contact_id), 0),
	OPT("phone", F_E164, 0, 0, NULL, LS(phone), 0),
	OPT("call_id", F_UUID, 0, 0, NULL, LS(call_id), 0),
	REQ("lead_score", F_INT, 0, 100, NULL, LS(lead_score), 0),
	OPT("lead_status", F_ENUM, 0, 0, lead_statuses, LS(lead_status), 0),
	OPT("lead_name", F_TEXT, 0, TEXT_SHORT, NULL, LS(lead_name), 0),
	OPT("service_interest", F_TEXT, 0, TEXT_SHORT * 5, NULL, LS(service_interest), 0),
	OPT("summary", F_TEXT, 0, TEXT_SUMMARY, NULL, LS(summary), 0),
	REQ("scored_at", F_TS, 0, 0, NULL, LS(scored_at), 0),
};

#define HL(f) offsetof(vox_alert_hot_lead, f)
static const field hot_lead_fields[] = {
	REQ("alert_id", F_UUID, 0, 0, NULL, HL(alert_id), 0),
	REQ("org_id", F_UUID, 0, 0, NULL, HL(org_id), 0),
	REQ("contact_id", F_UUID, 0, 0, NULL, HL(contact_id), 0),
	OPT("call_id", F_UUID, 0, 0, NULL, HL(call_id), 0),
	OPT("lead_name", F_TEXT, 0, TEXT_SHORT, NULL, HL(lead_name), 0),
	OPT("lead_phone", F_E164, 0, 0, NULL, HL(lead_phone), 0),
	REQ("lead_score", F_INT, 0, 100, NULL, HL(lead_score), 0),
	REQ("urgency_level", F_ENUM, 0, 0, urgencies, HL(urgency_level), 0),
	OPT("service_interest", F_TEXT, 0, TEXT_SHORT * 5, NULL, HL(service_interest), 0),
	OPT("summary", F_TEXT, 0, TEXT_SUMMARY, NULL, HL(summary), 0),
	REQ("created_at", F_TS, 0, 0, NULL, HL(created_at), 0),
};

/* An alert reports what the wallet holds, so its ranges are those of the
 * bigint columns: any balance, a debt limit, threshold or shortfall of 0
 * or more (their CHECKs). Narrower ranges made an alert of a legal wallet
 * unencodable, and the charge that raised it failed with it. */
#define AW(f) offsetof(vox_alert_wallet, f)
#define WALLET_FIELDS(amount_key)                                              \
	REQ("alert_id", F_UUID, 0, 0, NULL, AW(alert_id), 0),                  \
	REQ("org_id", F_UUID, 0, 0, NULL, AW(org_id), 0),                      \
	REQ("balance_pence", F_INT, INT64_MIN, INT64_MAX, NULL,                \
	    AW(balance_pence), 0),                                             \
	REQ("debt_limit_pence", F_INT, 0, INT64_MAX, NULL,                     \
	    AW(debt_limit_pence), 0),                                          \
	REQ(amount_key, F_INT, 0, INT64_MAX, NULL, AW(amount_pence), 0),       \
	OPT("call_id", F_UUID, 0, 0, NULL, AW(call_id), 0),                    \
	REQ("created_at", F_TS, 0, 0, NULL, AW(created_at), 0)
static const field low_balance_fields[] = {WALLET_FIELDS("threshold_pence")};
static const field debt_limit_fields[] = {WALLET_FIELDS("shortfall_pence")};

#define KIND(arr, type) {arr, VOX_NELEM(arr), offsetof(type, org_id)}
static const kind_def kinds[VOX_EVENT_KIND_COUNT] = {
	[VOX_CALL_STARTED] = KIND(call_started_fields, vox_call_started),
	[VOX_CALL_ENDED] = KIND(call_ended_fields, vox_call_ended),
	[VOX_PAYMENT_SUCCEEDED] = KIND(payment_succeeded_fields, vox_payment_succeeded),
	[VOX_PAYMENT_REFUNDED] = KIND(payment_refunded_fields, vox_payment_refunded),
	[VOX_LEAD_SCORED] = KIND(lead_scored_fields, vox_lead_scored),
	[VOX_ALERT_HOT_LEAD] = KIND(hot_lead_fields, vox_alert_hot_lead),
	[VOX_ALERT_LOW_BALANCE] = KIND(low_balance_fields, vox_alert_wallet),
	[VOX_ALERT_DEBT_LIMIT] = KIND(debt_limit_fields, vox_alert_wallet),
};

/* ---- errors ------------------------------------------------------------ */

static vox_status fail(vox_decode_error *err, vox_status st, const char *code,
		       const char *field_name, const char *fmt, ...)
	VOX_PRINTF(5, 6);

static vox_status fail(vox_decode_error *err, vox_status st, const char *code,
		       const char *field_name, const char *fmt, ...)
{
	if (err == NULL)
		return st;
	err->status = st;
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field_name ? field_name : "");
	char detail[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (field_name && *field_name)
		snprintf(err->message, sizeof(err->message), "%s: %s",
			 field_name, detail);
	else
		snprintf(err->message, sizeof(err->message), "%s", detail);
	return st;
}

/* A structural (msgpack-level) failure while reading `name` (NULL for the
 * top level). */
static vox_status fail_mp(vox_decode_error *err, vox_mp_err e, const char *name)
{
	switch (e) {
	case VOX_MP_TRUNCATED:
		return fail(err, VOX_E_DECODE, "truncated", name,
			    "message ends in the middle of a value");
	case VOX_MP_MALFORMED:
		return fail(err, VOX_E_DECODE, "malformed", name,
			    "reserved byte 0xc1 is not msgpack");
	case VOX_MP_TOO_DEEP:
		return fail(err, VOX_E_DECODE, "too_deep", name,
			    "nested deeper than %d levels", VOX_MP_MAX_DEPTH);
	case VOX_MP_RANGE:
		return fail(err, VOX_E_INVALID, "out_of_range", name,
			    "integer does not fit in 64 bits");
	default:
		return fail(err, VOX_E_INVALID, "wrong_type", name,
			    "unexpected type");
	}
}

/* ---- value checks ------------------------------------------------------ */

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

bool vox_uuid_parse(const char *s, size_t n, vox_uuid *out)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!is_hex(c)) {
			return false;
		}
		out->s[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
	}
	out->s[36] = '\0';
	return true;
}

bool vox_e164_ok(const char *s, size_t n)
{
	if (n < 9 || n > 16 || s[0] != '+' || s[1] == '0')
		return false;
	for (size_t i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Read a timestamp: ext -1 (4, 8 or 12 bytes) or integer milliseconds. */
vox_status vox_time_read(vox_mp *r, const char *name, vox_time *out,
			 vox_decode_error *err)
{
	int64_t sec;
	int64_t nsec;
	vox_mp_type t = vox_mp_peek(r);
	if (t == VOX_MP_INT) {
		int64_t ms;
		vox_mp_err e = vox_mp_int(r, &ms);
		if (e != VOX_MP_OK)
			return fail_mp(err, e, name);
		/* Range first: converting an extreme value would overflow. */
		if (ms < TS_MIN * 1000 || ms >= TS_MAX * 1000)
			return fail(err, VOX_E_INVALID, "out_of_range", name,
				    "must be between 2000-01-01 and 2100-01-01");
		sec = ms / 1000;
		nsec = (ms % 1000) * 1000000;
	} else if (t == VOX_MP_EXT) {
		int8_t type;
		const uint8_t *b;
		uint32_t len;
		vox_mp_err e = vox_mp_ext(r, &type, &b, &len);
		if (e != VOX_MP_OK)
			return fail_mp(err, e, name);
		if (type != -1)
			return fail(err, VOX_E_INVALID, "wrong_type", name,
				    "must be a timestamp (ext -1 or integer"
				    " milliseconds), got ext %d", type);
		if (len == 4) {
			sec = ((int64_t)b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
			nsec = 0;
		} else if (len == 8) {
			uint64_t v = 0;
			for (int i = 0; i < 8; i++)
				v = (v << 8) | b[i];
			nsec = (int64_t)(v >> 34);
			sec = (int64_t)(v & 0x3FFFFFFFFULL);
		} else if (len == 12) {
			uint64_t s = 0;
			uint32_t ns = 0;
			for (int i = 0; i < 4; i++)
				ns = (ns << 8) | b[i];
			for (int i = 4; i < 12; i++)
				s = (s << 8) | b[i];
			nsec = ns;
			sec = (int64_t)s;
		} else {
			return fail(err, VOX_E_INVALID, "bad_timestamp", name,
				    "timestamp extension of %u bytes (4, 8 or 12)",
				    len);
		}
		if (nsec > 999999999)
			return fail(err, VOX_E_INVALID, "bad_timestamp", name,
				    "nanoseconds above 999999999");
	} else {
		if (t == VOX_MP_INVALID)
			return fail_mp(err, vox_mp_skip(r), name);
		return fail(err, VOX_E_INVALID, "wrong_type", name,
			    "must be a timestamp (ext -1 or integer milliseconds)");
	}
	if (sec < TS_MIN || sec >= TS_MAX)
		return fail(err, VOX_E_INVALID, "out_of_range", name,
			    "must be between 2000-01-01 and 2100-01-01");
	out->sec = sec;
	out->nsec = (int32_t)nsec;
	out->set = true;
	return VOX_OK;
}

/* Read the string value of field f, reporting a type mismatch by name. */
static vox_status read_str(vox_mp *r, const field *f, const char **s,
			   uint32_t *n, vox_decode_error *err)
{
	vox_mp_err e = vox_mp_str(r, s, n);
	if (e == VOX_MP_TYPE)
		return fail(err, VOX_E_INVALID, "wrong_type", f->key,
			    "must be a string");
	if (e != VOX_MP_OK)
		return fail_mp(err, e, f->key);
	return VOX_OK;
}

/* The rules of a string field (id, text, phone) on n bytes at s; err may
 * be NULL. Shared by the decoder and vox_event_str_fits. */
static vox_status check_str(const field *f, const char *s, size_t n,
			    vox_decode_error *err)
{
	switch (f->kind) {
	case F_EVENT_ID:
	case F_ID: {
		size_t maxlen = f->kind == F_EVENT_ID ? 128 : 255;
		char lo = f->kind == F_EVENT_ID ? 0x20 : 0x21;
		bool ok = n >= 1 && n <= maxlen;
		for (size_t i = 0; ok && i < n; i++)
			ok = s[i] >= lo && s[i] <= 0x7e;
		if (!ok)
			return fail(err, VOX_E_INVALID,
				    f->kind == F_EVENT_ID ? "bad_event_id" : "bad_id",
				    f->key,
				    "must be 1..%zu printable ASCII characters%s",
				    maxlen, f->kind == F_ID ? " without spaces" : "");
		return VOX_OK;
	}
	case F_TEXT:
		if (n > (size_t)f->max)
			return fail(err, VOX_E_INVALID, "too_long", f->key,
				    "longer than %" PRId64 " bytes", f->max);
		for (size_t i = 0; i < n;) {
			if (s[i] == '\0')
				return fail(err, VOX_E_INVALID, "bad_string", f->key,
					    "contains a NUL byte");
			if ((unsigned char)s[i] < 0x80) { /* ASCII: the common case */
				i++;
				continue;
			}
			size_t k = vox_utf8_len((const unsigned char *)s + i, n - i);
			if (k == 0)
				return fail(err, VOX_E_INVALID, "bad_utf8", f->key,
					    "not valid UTF-8");
			i += k;
		}
		return VOX_OK;
	case F_E164:
		if (!vox_e164_ok(s, n))
			return fail(err, VOX_E_INVALID, "bad_phone", f->key,
				    "must be E.164 (+ then 8 to 15 digits, not"
				    " starting with 0)");
		return VOX_OK;
	default:
		return fail(err, VOX_E_INVALID, "wrong_type", f->key,
			    "not a string field");
	}
}

static vox_status read_field(vox_mp *r, const field *f, char *base,
			     vox_decode_error *err)
{
	const char *s = NULL;
	uint32_t n = 0;
	vox_status st;
	void *dst = base + f->off;

	switch (f->kind) {
	case F_EVENT_ID:
	case F_ID:
	case F_TEXT:
	case F_E164:
		if ((st = read_str(r, f, &s, &n, err)) != VOX_OK)
			return st;
		if ((st = check_str(f, s, n, err)) != VOX_OK)
			return st;
		*(vox_str *)dst = (vox_str){s, n};
		return VOX_OK;
	case F_UUID:
		if ((st = read_str(r, f, &s, &n, err)) != VOX_OK)
			return st;
		if (!vox_uuid_parse(s, n, dst))
			return fail(err, VOX_E_INVALID, "bad_uuid", f->key,
				    "must be a UUID (36 characters, 8-4-4-4-12 hex)");
		return VOX_OK;
	case F_TS:
		return vox_time_read(r, f->key, dst, err);
	case F_INT: {
		int64_t v;
		vox_mp_err e = vox_mp_int(r, &v);
		if (e == VOX_MP_TYPE)
			return fail(err, VOX_E_INVALID, "wrong_type", f->key,
				    "must be an integer");
		if (e == VOX_MP_RANGE || (e == VOX_MP_OK && (v < f->min || v > f->max)))
			return fail(err, VOX_E_INVALID, "out_of_range", f->key,
				    "must be %" PRId64 "..%" PRId64, f->min, f->max);
		if (e != VOX_MP_OK)
			return fail_mp(err, e, f->key);
		*(int64_t *)dst = v;
		return VOX_OK;
	}
	case F_FLOAT: {
		double v;
		vox_mp_err e = vox_mp_double(r, &v);
		if (e == VOX_MP_TYPE)
			return fail(err, VOX_E_INVALID, "wrong_type", f->key,
				    "must be a number");
		if (e != VOX_MP_OK && e != VOX_MP_RANGE)
			return fail_mp(err, e, f->key);
		if (e == VOX_MP_RANGE || isnan(v) || v < (double)f->min ||
		    v > (double)f->max)
			return fail(err, VOX_E_INVALID, "out_of_range", f->key,
				    "must be %" PRId64 ".0..%" PRId64 ".0",
				    f->min, f->max);
		*(double *)dst = v;
		*(bool *)(void *)(base + f->has_off) = true;
		return VOX_OK;
	}
	case F_ENUM:
		if ((st = read_str(r, f, &s, &n, err)) != VOX_OK)
			return st;
		{
			int i = vox_choice_index(f->choices, s, n);
			if (i >= 0) {
				*(int *)dst = i + 1;
				return VOX_OK;
			}
			char list[96];
			vox_choice_join(list, sizeof(list), f->choices, "|");
			return fail(err, VOX_E_INVALID, "bad_enum", f->key,
				    "must be one of %s", list);
		}
	}
	return fail(err, VOX_E_INTERNAL, "internal", f->key, "bad field table");
}

/* ---- decode ------------------------------------------------------------ */

static const field *find_field(const kind_def *k, const char *key, uint32_t n,
			       size_t *index)
{
	for (size_t i = 0; i < k->nfields; i++) {
		const char *name = k->fields[i].key;
		if (name[0] == key[0] && strlen(name) == n &&
		    memcmp(name, key, n) == 0) {
			*index = i;
			return &k->fields[i];
		}
	}
	return NULL;
}

vox_status vox_event_decode(vox_event *out, vox_event_kind kind,
			    const void *data, size_t len, vox_decode_error *err)
{
	if ((unsigned)kind >= VOX_EVENT_KIND_COUNT)
		return fail(err, VOX_E_INVALID, "unknown_subject", NULL,
			    "unknown message kind");
	if (len > VOX_MAX_MESSAGE)
		return fail(err, VOX_E_TOO_LARGE, "too_large", NULL,
			    "message of %zu bytes is over the %d byte limit",
			    len, VOX_MAX_MESSAGE);

	const kind_def *k = &kinds[kind];
	vox_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	char *base = (char *)&ev.u;
	uint32_t seen = 0;
	vox_mp r;
	uint32_t n;
	vox_status st;

	vox_mp_init(&r, data, len);
	vox_mp_err e = vox_mp_map(&r, &n);
	if (e == VOX_MP_TYPE || e == VOX_MP_MALFORMED)
		return fail(err, VOX_E_DECODE, "not_a_map", NULL,
			    "message must be a msgpack map with string keys");
	if (e != VOX_MP_OK)
		return fail_mp(err, e, NULL);
	if (n > MAX_KEYS)
		return fail(err, VOX_E_TOO_LARGE, "too_large", NULL,
			    "map of %u entries is over the %d entry limit", n,
			    MAX_KEYS);

	for (uint32_t i = 0; i < n; i++) {
		const char *key;
		uint32_t klen;
		e = vox_mp_str(&r, &key, &klen);
		if (e == VOX_MP_TYPE)
			return fail(err, VOX_E_DECODE, "bad_key", NULL,
				    "map key %u is not a string", i);
		if (e != VOX_MP_OK)
			return fail_mp(err, e, NULL);
		size_t idx = 0;
		const field *f = klen ? find_field(k, key, klen, &idx) : NULL;
		if (f == NULL) {
			/* unknown keys are ignored: forward compatibility */
			e = vox_mp_skip(&r);
			if (e != VOX_MP_OK)
				return fail_mp(err, e, NULL);
			continue;
		}
		if (seen & (1u << idx))
			return fail(err, VOX_E_DECODE, "duplicate_key", f->key,
				    "appears twice");
		seen |= 1u << idx;
		if (vox_mp_peek(&r) == VOX_MP_NIL) {
			/* nil means "absent" for an optional field */
			if (f->required)
				return fail(err, VOX_E_INVALID, "missing", f->key,
					    "required, got nil");
			r.p++;
			continue;
		}
		if ((st = read_field(&r, f, base, err)) != VOX_OK)
			return st;
	}
	if (r.p != r.end)
		return fail(err, VOX_E_DECODE, "trailing_bytes", NULL,
			    "%zu bytes after the map", vox_mp_left(&r));
	for (size_t i = 0; i < k->nfields; i++)
		if (k->fields[i].required && !(seen & (1u << i)))
			return fail(err, VOX_E_INVALID, "missing",
				    k->fields[i].key, "required");
	if (kind == VOX_LEAD_SCORED && !ev.u.lead_scored.contact_id.s[0] &&
	    !ev.u.lead_scored.phone.ptr)
		return fail(err, VOX_E_INVALID, "missing", "contact_id",
			    "contact_id or phone is required");
	*out = ev;
	return VOX_OK;
}

vox_status vox_event_decode_subject(vox_event *out, const char *subject,
				    const void *data, size_t len,
				    vox_decode_error *err)
{
	vox_event_kind kind;
	const char *org;
	size_t orglen;
	if (!vox_subject_parse(subject, &kind, &org, &orglen))
		return fail(err, VOX_E_INVALID, "unknown_subject", NULL,
			    "subject is not one of the contract's");
	vox_event ev;
	vox_status st = vox_event_decode(&ev, kind, data, len, err);
	if (st != VOX_OK)
		return st;
	vox_uuid token;
	const vox_uuid *payload_org = vox_event_org(&ev);
	if (!vox_uuid_parse(org, orglen, &token) ||
	    strcmp(token.s, payload_org->s) != 0)
		return fail(err, VOX_E_ORG_MISMATCH, "org_mismatch", "org_id",
			    "does not match the subject's org token");
	*out = ev;
	return VOX_OK;
}

/* ---- encode ------------------------------------------------------------ */

static bool field_present(const field *f, const char *base)
{
	const void *p = base + f->off;
	switch (f->kind) {
	case F_EVENT_ID:
	case F_ID:
	case F_TEXT:
	case F_E164:
		return ((const vox_str *)p)->ptr != NULL;
	case F_UUID:
		return ((const vox_uuid *)p)->s[0] != '\0';
	case F_TS:
		return ((const vox_time *)p)->set;
	case F_INT:
		return true;
	case F_FLOAT:
		return *(const bool *)(const void *)(base + f->has_off);
	case F_ENUM:
		return *(const int *)p != 0;
	}
	return false;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

int vox_mp_buf_write(void *buf, const char *p, size_t n)
{
	vox_buf_append(buf, p, n);
	return 0;
}

void vox_mp_pack_cstr(msgpack_packer *pk, const char *s)
{
	pack_str(pk, s, strlen(s));
}

void vox_time_pack(msgpack_packer *pk, const vox_time *t)
{
	unsigned char b[12];
	if (t->nsec == 0 && t->sec >= 0 && t->sec <= UINT32_MAX) {
		for (int i = 0; i < 4; i++)
			b[i] = (unsigned char)(t->sec >> (24 - 8 * i));
		msgpack_pack_ext(pk, 4, -1);
		msgpack_pack_ext_body(pk, b, 4);
	} else if (t->sec >= 0 && t->sec < (1LL << 34)) {
		uint64_t v = ((uint64_t)t->nsec << 34) | (uint64_t)t->sec;
		for (int i = 0; i < 8; i++)
			b[i] = (unsigned char)(v >> (56 - 8 * i));
		msgpack_pack_ext(pk, 8, -1);
		msgpack_pack_ext_body(pk, b, 8);
	} else {
		for (int i = 0; i < 4; i++)
			b[i] = (unsigned char)((uint32_t)t->nsec >> (24 - 8 * i));
		for (int i = 0; i < 8; i++)
			b[4 + i] = (unsigned char)((uint64_t)t->sec >> (56 - 8 * i));
		msgpack_pack_ext(pk, 12, -1);
		msgpack_pack_ext_body(pk, b, 12);
	}
}

vox_status vox_event_encode(const vox_event *ev, unsigned char **out,
			    size_t *len, vox_decode_error *err)
{
	if ((unsigned)ev->kind >= VOX_EVENT_KIND_COUNT)
		return fail(err, VOX_E_INVALID, "unknown_subject", NULL,
			    "unknown message kind");
	const kind_def *k = &kinds[ev->kind];
	const char *base = (const char *)&ev->u;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

	uint32_t count = 0;
	for (size_t i = 0; i < k->nfields; i++)
		count += field_present(&k->fields[i], base);
	msgpack_pack_map(&pk, count);
	for (size_t i = 0; i < k->nfields; i++) {
		const field *f = &k->fields[i];
		const void *p = base + f->off;
		if (!field_present(f, base))
			continue;
		pack_str(&pk, f->key, strlen(f->key));
		switch (f->kind) {
		case F_EVENT_ID:
		case F_ID:
		case F_TEXT:
		case F_E164:
			pack_str(&pk, ((const vox_str *)p)->ptr,
				 ((const vox_str *)p)->len);
			break;
		case F_UUID:
			pack_str(&pk, ((const vox_uuid *)p)->s,
				 strnlen(((const vox_uuid *)p)->s, 37));
			break;
		case F_TS:
			vox_time_pack(&pk, p);
			break;
		case F_INT:
			msgpack_pack_int64(&pk, *(const int64_t *)p);
			break;
		case F_FLOAT:
			msgpack_pack_double(&pk, *(const double *)p);
			break;
		case F_ENUM: {
			int v = *(const int *)p;
			int nchoices = 0;
			while (f->choices[nchoices])
				nchoices++;
			if (v < 1 || v > nchoices) {
				msgpack_sbuffer_destroy(&sb);
				return fail(err, VOX_E_INVALID, "bad_enum",
					    f->key, "value %d is not in the enum", v);
			}
			pack_str(&pk, f->choices[v - 1], strlen(f->choices[v - 1]));
			break;
		}
		}
	}
	/* Validate what we produced with the very rules a receiver applies. */
	vox_event check;
	vox_status st = vox_event_decode(&check, ev->kind, sb.data, sb.size, err);
	if (st != VOX_OK) {
		msgpack_sbuffer_destroy(&sb);
		return st;
	}
	*len = sb.size;
	*out = (unsigned char *)msgpack_sbuffer_release(&sb);
	return VOX_OK;
}

/* ---- JSON -------------------------------------------------------------- */

/* Shortest %g form that reads back as the same double. */
static void json_double(vox_buf *b, double v)
{
	char tmp[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	vox_buf_puts(b, tmp);
}

void vox_time_rfc3339(const vox_time *t, char out[64])
{
	struct tm tm;
	time_t s = (time_t)t->sec;
	gmtime_r(&s, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)t->nsec);
}

void vox_event_json_into(const vox_event *ev, vox_buf *b)
{
	const kind_def *k = &kinds[ev->kind];
	const char *base = (const char *)&ev->u;
	bool first = true;
	vox_buf_putc(b, '{');
	for (size_t i = 0; i < k->nfields; i++) {
		const field *f = &k->fields[i];
		const void *p = base + f->off;
		if (!field_present(f, base))
			continue;
		if (!first)
			vox_buf_putc(b, ',');
		first = false;
		vox_buf_json_str(b, f->key, strlen(f->key));
		vox_buf_putc(b, ':');
		switch (f->kind) {
		case F_EVENT_ID:
		case F_ID:
		case F_TEXT:
		case F_E164:
			vox_buf_json_str(b, ((const vox_str *)p)->ptr,
					 ((const vox_str *)p)->len);
			break;
		case F_UUID:
			vox_buf_json_str(b, ((const vox_uuid *)p)->s,
					 strnlen(((const vox_uuid *)p)->s, 37));
			break;
		case F_TS: {
			char ts[64];
			vox_time_rfc3339(p, ts);
			vox_buf_json_str(b, ts, strlen(ts));
			break;
		}
		case F_INT:
			vox_buf_printf(b, "%" PRId64, *(const int64_t *)p);
			break;
		case F_FLOAT:
			json_double(b, *(const double *)p);
			break;
		case F_ENUM: {
			int v = *(const int *)p;
			int nchoices = 0;
			while (f->choices[nchoices])
				nchoices++;
			const char *name = v >= 1 && v <= nchoices ? f->choices[v - 1] : "?";
			vox_buf_json_str(b, name, strlen(name));
			break;
		}
		}
	}
	vox_buf_putc(b, '}');
}

char *vox_event_to_json(const vox_event *ev)
{
	if ((unsigned)ev->kind >= VOX_EVENT_KIND_COUNT)
		return NULL;
	vox_buf b;
	vox_buf_init(&b);
	vox_event_json_into(ev, &b);
	return b.data;
}

const vox_uuid *vox_event_org(const vox_event *ev)
{
	return (const vox_uuid *)(const void *)((const char *)&ev->u +
						kinds[ev->kind].org_off);
}

vox_str vox_event_msg_id(const vox_event *ev)
{
	switch (ev->kind) {
	case VOX_ALERT_HOT_LEAD:
		return (vox_str){ev->u.hot_lead.alert_id.s, 36};
	case VOX_ALERT_LOW_BALANCE:
	case VOX_ALERT_DEBT_LIMIT:
		return (vox_str){ev->u.wallet.alert_id.s, 36};
	default:
		/* every inbound kind starts with its event_id */
		return *(const vox_str *)(const void *)&ev->u;
	}
}

bool vox_event_key_is_time(vox_event_kind kind, const char *key, size_t n)
{
	if ((unsigned)kind >= VOX_EVENT_KIND_COUNT)
		return false;
	const kind_def *k = &kinds[kind];
	for (size_t i = 0; i < k->nfields; i++)
		if (k->fields[i].kind == F_TS && strlen(k->fields[i].key) == n &&
		    memcmp(k->fields[i].key, key, n) == 0)
			return true;
	return false;
}

bool vox_event_str_fits(vox_event_kind kind, const char *key, vox_str v)
{
	if ((unsigned)kind >= VOX_EVENT_KIND_COUNT || v.ptr == NULL)
		return false;
	const kind_def *k = &kinds[kind];
	for (size_t i = 0; i < k->nfields; i++) {
		const field *f = &k->fields[i];
		if (strcmp(f->key, key) != 0)
			continue;
		if (f->kind != F_EVENT_ID && f->kind != F_ID && f->kind != F_TEXT &&
		    f->kind != F_E164)
			return false;
		return check_str(f, v.ptr, v.len, NULL) == VOX_OK;
	}
	return false;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), for any year. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n (1 to 9) decimal digits at s into *v. */
static bool digits(const char *s, size_t n, int64_t *v)
{
	uint64_t u = 0;
	if (!vox_parse_decimal(s, n, &u))
		return false;
	*v = (int64_t)u;
	return true;
}

bool vox_time_parse_rfc3339(const char *s, size_t n, vox_time *out)
{
	int64_t y, mo, d, h, mi, se, ns = 0;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':' || !digits(s, 4, &y) ||
	    !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
	    !digits(s + 17, 2, &se))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    se > 59)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return false;
	size_t i = 19;
	if (i < n && s[i] == '.') {
		size_t start = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		size_t nd = i - start;
		if (nd == 0 || nd > 9)
			return false;
		int64_t frac;
		if (!digits(s + start, nd, &frac))
			return false;
		for (size_t k = nd; k < 9; k++)
			frac *= 10;
		ns = frac;
	}
	int64_t offset = 0;
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int64_t oh, om;
		if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) ||
		    oh > 23 || om > 59)
			return false;
		offset = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
		i += 6;
	} else {
		return false;
	}
	if (i != n)
		return false;
	out->sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
	out->nsec = (int32_t)ns;
	out->set = true;
	return true;
}
