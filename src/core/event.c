/*
 * event.c - strict decoding, encoding and JSON rendering of the messages of
 * the wire contract. Each message kind is a schema (core/schema.h): a
 * table of field descriptors (name, kind, required, range, where it lives
 * in the C struct). The schema decoder, and the encoder and JSON writer
 * below, serve every kind from it, so a rule is written once and the
 * three can never disagree.
 */
#include "vox/event.h"

#include "core/buf.h"
#include "core/codec.h"
#include "core/common.h"
#include "core/contract.h"
#include "core/mp.h"
#include "core/schema.h"
#include "vox/subjects.h"

#include <math.h>
#include <msgpack.h>
#include <time.h>

#define fail vox_error_set

#define MAX_KEYS 256 /* a map with more entries is refused: too_large */

typedef struct kind_def {
	vox_schema schema;
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

#define REQ(k, kind, ...) {k, kind, true, __VA_ARGS__, NULL}
#define OPT(k, kind, ...) {k, kind, false, __VA_ARGS__, NULL}

#define CS(f) offsetof(vox_call_started, f)
static const vox_field call_started_fields[] = {
	REQ("event_id", VOX_F_EVENT_ID, 0, 0, NULL, CS(event_id), 0),
	REQ("org_id", VOX_F_UUID, 0, 0, NULL, CS(org_id), 0),
	REQ("call_id", VOX_F_UUID, 0, 0, NULL, CS(call_id), 0),
	OPT("vapi_call_id", VOX_F_ID, 0, 0, NULL, CS(vapi_call_id), 0),
	REQ("direction", VOX_F_ENUM, 0, 0, directions, CS(direction), 0),
	REQ("from_number", VOX_F_E164, 0, 0, NULL, CS(from_number), 0),
	REQ("to_number", VOX_F_E164, 0, 0, NULL, CS(to_number), 0),
	OPT("caller_name", VOX_F_TEXT, 0, TEXT_SHORT, NULL, CS(caller_name), 0),
	OPT("contact_id", VOX_F_UUID, 0, 0, NULL, CS(contact_id), 0),
	REQ("started_at", VOX_F_TS, 0, 0, NULL, CS(started_at), 0),
};

#define CE(f) offsetof(vox_call_ended, f)
static const vox_field call_ended_fields[] = {
	REQ("event_id", VOX_F_EVENT_ID, 0, 0, NULL, CE(event_id), 0),
	REQ("org_id", VOX_F_UUID, 0, 0, NULL, CE(org_id), 0),
	REQ("call_id", VOX_F_UUID, 0, 0, NULL, CE(call_id), 0),
	REQ("ended_at", VOX_F_TS, 0, 0, NULL, CE(ended_at), 0),
	REQ("duration_seconds", VOX_F_INT, 0, 86400, NULL, CE(duration_seconds), 0),
	REQ("status", VOX_F_ENUM, 0, 0, call_statuses, CE(status), 0),
	OPT("direction", VOX_F_ENUM, 0, 0, directions, CE(direction), 0),
	OPT("from_number", VOX_F_E164, 0, 0, NULL, CE(from_number), 0),
	OPT("to_number", VOX_F_E164, 0, 0, NULL, CE(to_number), 0),
	OPT("started_at", VOX_F_TS, 0, 0, NULL, CE(started_at), 0),
	OPT("transcript", VOX_F_TEXT, 0, TEXT_TRANSCRIPT, NULL, CE(transcript), 0),
	OPT("summary", VOX_F_TEXT, 0, TEXT_SUMMARY, NULL, CE(summary), 0),
	OPT("recording_url", VOX_F_TEXT, 0, TEXT_URL, NULL, CE(recording_url), 0),
	OPT("sentiment_summary", VOX_F_TEXT, 0, TEXT_SUMMARY, NULL, CE(sentiment_summary), 0),
	OPT("sentiment_label", VOX_F_ENUM, 0, 0, sentiments, CE(sentiment_label), 0),
	OPT("sentiment_score", VOX_F_FLOAT, 0, 1, NULL, CE(sentiment_score), CE(has_sentiment_score)),
	OPT("sentiment_urgency", VOX_F_ENUM, 0, 0, urgencies, CE(sentiment_urgency), 0),
};

#define PS(f) offsetof(vox_payment_succeeded, f)
static const vox_field payment_succeeded_fields[] = {
	REQ("event_id", VOX_F_EVENT_ID, 0, 0, NULL, PS(event_id), 0),
	REQ("org_id", VOX_F_UUID, 0, 0, NULL, PS(org_id), 0),
	REQ("stripe_payment_intent_id", VOX_F_ID, 0, 0, NULL, PS(stripe_payment_intent_id), 0),
	REQ("amount_pence", VOX_F_INT, 1, MONEY_MAX, NULL, PS(amount_pence), 0),
	OPT("description", VOX_F_TEXT, 0, TEXT_SHORT * 5, NULL, PS(description), 0),
	REQ("occurred_at", VOX_F_TS, 0, 0, NULL, PS(occurred_at), 0),
};

#define PR(f) offsetof(vox_payment_refunded, f)
static const vox_field payment_refunded_fields[] = {
	REQ("event_id", VOX_F_EVENT_ID, 0, 0, NULL, PR(event_id), 0),
	REQ("org_id", VOX_F_UUID, 0, 0, NULL, PR(org_id), 0),
	REQ("stripe_refund_id", VOX_F_ID, 0, 0, NULL, PR(stripe_refund_id), 0),
	REQ("stripe_payment_intent_id", VOX_F_ID, 0, 0, NULL, PR(stripe_payment_intent_id), 0),
	REQ("amount_pence", VOX_F_INT, 1, MONEY_MAX, NULL, PR(amount_pence), 0),
	REQ("occurred_at", VOX_F_TS, 0, 0, NULL, PR(occurred_at), 0),
};

#define LS(f) offsetof(vox_lead_scored, f)
static const vox_field lead_scored_fields[] = {
	REQ("event_id", VOX_F_EVENT_ID, 0, 0, NULL, LS(event_id), 0),
	REQ("org_id", VOX_F_UUID, 0, 0, NULL, LS(org_id), 0),
	OPT("contact_id", VOX_F_UUID, 0, 0, NULL, LS(contact_id), 0),
	OPT("phone", VOX_F_E164, 0, 0, NULL, LS(phone), 0),
	OPT("call_id", VOX_F_UUID, 0, 0, NULL, LS(call_id), 0),
	REQ("lead_score", VOX_F_INT, 0, 100, NULL, LS(lead_score), 0),
	OPT("lead_status", VOX_F_ENUM, 0, 0, lead_statuses, LS(lead_status), 0),
	OPT("lead_name", VOX_F_TEXT, 0, TEXT_SHORT, NULL, LS(lead_name), 0),
	OPT("service_interest", VOX_F_TEXT, 0, TEXT_SHORT * 5, NULL, LS(service_interest), 0),
	OPT("summary", VOX_F_TEXT, 0, TEXT_SUMMARY, NULL, LS(summary), 0),
	REQ("scored_at", VOX_F_TS, 0, 0, NULL, LS(scored_at), 0),
};

#define HL(f) offsetof(vox_alert_hot_lead, f)
static const vox_field hot_lead_fields[] = {
	REQ("alert_id", VOX_F_UUID, 0, 0, NULL, HL(alert_id), 0),
	REQ("org_id", VOX_F_UUID, 0, 0, NULL, HL(org_id), 0),
	REQ("contact_id", VOX_F_UUID, 0, 0, NULL, HL(contact_id), 0),
	OPT("call_id", VOX_F_UUID, 0, 0, NULL, HL(call_id), 0),
	OPT("lead_name", VOX_F_TEXT, 0, TEXT_SHORT, NULL, HL(lead_name), 0),
	OPT("lead_phone", VOX_F_E164, 0, 0, NULL, HL(lead_phone), 0),
	REQ("lead_score", VOX_F_INT, 0, 100, NULL, HL(lead_score), 0),
	REQ("urgency_level", VOX_F_ENUM, 0, 0, urgencies, HL(urgency_level), 0),
	OPT("service_interest", VOX_F_TEXT, 0, TEXT_SHORT * 5, NULL, HL(service_interest), 0),
	OPT("summary", VOX_F_TEXT, 0, TEXT_SUMMARY, NULL, HL(summary), 0),
	REQ("created_at", VOX_F_TS, 0, 0, NULL, HL(created_at), 0),
};

/* An alert reports what the wallet holds, so its ranges are those of the
 * bigint columns: any balance, a debt limit, threshold or shortfall of 0
 * or more (their CHECKs). Narrower ranges made an alert of a legal wallet
 * unencodable, and the charge that raised it failed with it. */
#define AW(f) offsetof(vox_alert_wallet, f)
#define WALLET_FIELDS(amount_key)                                              \
	REQ("alert_id", VOX_F_UUID, 0, 0, NULL, AW(alert_id), 0),                  \
	REQ("org_id", VOX_F_UUID, 0, 0, NULL, AW(org_id), 0),                      \
	REQ("balance_pence", VOX_F_INT, INT64_MIN, INT64_MAX, NULL,                \
	    AW(balance_pence), 0),                                             \
	REQ("debt_limit_pence", VOX_F_INT, 0, INT64_MAX, NULL,                     \
	    AW(debt_limit_pence), 0),                                          \
	REQ(amount_key, VOX_F_INT, 0, INT64_MAX, NULL, AW(amount_pence), 0),       \
	OPT("call_id", VOX_F_UUID, 0, 0, NULL, AW(call_id), 0),                    \
	REQ("created_at", VOX_F_TS, 0, 0, NULL, AW(created_at), 0)
static const vox_field low_balance_fields[] = {WALLET_FIELDS("threshold_pence")};
static const vox_field debt_limit_fields[] = {WALLET_FIELDS("shortfall_pence")};

#define KIND(arr, type)                                                        \
	{{arr, VOX_NELEM(arr), VOX_MAX_MESSAGE, MAX_KEYS, false, "message"},             \
	 offsetof(type, org_id)}
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

const vox_schema *vox_event_schema(vox_event_kind kind)
{
	return (unsigned)kind < VOX_EVENT_KIND_COUNT ? &kinds[kind].schema : NULL;
}

/* ---- decode ------------------------------------------------------------ */

vox_status vox_event_decode(vox_event *out, vox_event_kind kind,
			    const void *data, size_t len, vox_error *err)
{
	if ((unsigned)kind >= VOX_EVENT_KIND_COUNT)
		return fail(err, VOX_E_INVALID, "unknown_subject", NULL,
			    "unknown message kind");
	vox_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	vox_status st = vox_schema_decode(&ev.u, NULL, &kinds[kind].schema,
					  VOX_SCHEMA_ALL, data, len, NULL, err);
	if (st != VOX_OK)
		return st;
	if (kind == VOX_LEAD_SCORED && !ev.u.lead_scored.contact_id.s[0] &&
	    !ev.u.lead_scored.phone.ptr)
		return fail(err, VOX_E_INVALID, "missing", "contact_id",
			    "contact_id or phone is required");
	*out = ev;
	return VOX_OK;
}

vox_status vox_schema_version_check(vox_error *err, const char *header)
{
	if (!header || strcmp(header, VOX_SCHEMA_VERSION) == 0)
		return VOX_OK;
	return fail(err, VOX_E_INVALID, "unknown_schema", "Vox-Schema",
		    "version '%.16s' is not one this actor reads (" VOX_SCHEMA_VERSION
		    "): replay it once an actor that reads it runs", header);
}

vox_status vox_event_decode_subject(vox_event *out, const char *subject,
				    const void *data, size_t len,
				    vox_error *err)
{
	vox_event_kind kind;
	const char *org;
	size_t orglen;
	if (!vox_subject_parse(&kind, &org, &orglen, subject))
		return fail(err, VOX_E_INVALID, "unknown_subject", NULL,
			    "subject is not one of the contract's");
	vox_event ev;
	vox_status st = vox_event_decode(&ev, kind, data, len, err);
	if (st != VOX_OK)
		return st;
	vox_uuid token;
	const vox_uuid *payload_org = vox_event_org(&ev);
	if (!vox_uuid_parse(&token, org, orglen) ||
	    strcmp(token.s, payload_org->s) != 0)
		return fail(err, VOX_E_ORG_MISMATCH, "org_mismatch", "org_id",
			    "does not match the subject's org token");
	*out = ev;
	return VOX_OK;
}

/* ---- encode ------------------------------------------------------------ */

static bool field_present(const vox_field *f, const char *base)
{
	const void *p = base + f->off;
	switch (f->kind) {
	case VOX_F_EVENT_ID:
	case VOX_F_ID:
	case VOX_F_TEXT:
	case VOX_F_E164:
		return ((const vox_str *)p)->ptr != NULL;
	case VOX_F_UUID:
		return ((const vox_uuid *)p)->s[0] != '\0';
	case VOX_F_TS:
		return ((const vox_time *)p)->set;
	case VOX_F_INT:
		return true;
	case VOX_F_FLOAT:
		return *(const bool *)(const void *)(base + f->has_off);
	case VOX_F_ENUM:
		return *(const int *)p != 0;
	case VOX_F_BYTES: /* request kinds: no message has them */
	case VOX_F_BIN:
	case VOX_F_BOOL:
	case VOX_F_CUSTOM:
		return false;
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
		vox_be_put(b, (uint64_t)t->sec, 4);
		msgpack_pack_ext(pk, 4, -1);
		msgpack_pack_ext_body(pk, b, 4);
	} else if (t->sec >= 0 && t->sec < (1LL << 34)) {
		uint64_t v = ((uint64_t)t->nsec << 34) | (uint64_t)t->sec;
		vox_be_put(b, v, 8);
		msgpack_pack_ext(pk, 8, -1);
		msgpack_pack_ext_body(pk, b, 8);
	} else {
		vox_be_put(b, (uint32_t)t->nsec, 4);
		vox_be_put(b + 4, (uint64_t)t->sec, 8);
		msgpack_pack_ext(pk, 12, -1);
		msgpack_pack_ext_body(pk, b, 12);
	}
}

vox_status vox_event_encode(unsigned char **out, size_t *len,
			    const vox_event *ev, vox_error *err)
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
	for (size_t i = 0; i < k->schema.nfields; i++)
		count += field_present(&k->schema.fields[i], base);
	msgpack_pack_map(&pk, count);
	for (size_t i = 0; i < k->schema.nfields; i++) {
		const vox_field *f = &k->schema.fields[i];
		const void *p = base + f->off;
		if (!field_present(f, base))
			continue;
		pack_str(&pk, f->key, strlen(f->key));
		switch (f->kind) {
		case VOX_F_EVENT_ID:
		case VOX_F_ID:
		case VOX_F_TEXT:
		case VOX_F_E164:
			pack_str(&pk, ((const vox_str *)p)->ptr,
				 ((const vox_str *)p)->len);
			break;
		case VOX_F_UUID:
			pack_str(&pk, ((const vox_uuid *)p)->s,
				 strnlen(((const vox_uuid *)p)->s, 37));
			break;
		case VOX_F_TS:
			vox_time_pack(&pk, p);
			break;
		case VOX_F_INT:
			msgpack_pack_int64(&pk, *(const int64_t *)p);
			break;
		case VOX_F_FLOAT:
			msgpack_pack_double(&pk, *(const double *)p);
			break;
		case VOX_F_ENUM: {
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
		default: /* never present (field_present) */
			break;
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

void vox_time_rfc3339(char out[64], const vox_time *t)
{
	struct tm tm;
	time_t s = (time_t)t->sec;
	gmtime_r(&s, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)t->nsec);
}

void vox_event_json_into(vox_buf *b, const vox_event *ev)
{
	const kind_def *k = &kinds[ev->kind];
	const char *base = (const char *)&ev->u;
	bool first = true;
	vox_buf_putc(b, '{');
	for (size_t i = 0; i < k->schema.nfields; i++) {
		const vox_field *f = &k->schema.fields[i];
		const void *p = base + f->off;
		if (!field_present(f, base))
			continue;
		if (!first)
			vox_buf_putc(b, ',');
		first = false;
		vox_buf_json_str(b, f->key, strlen(f->key));
		vox_buf_putc(b, ':');
		switch (f->kind) {
		case VOX_F_EVENT_ID:
		case VOX_F_ID:
		case VOX_F_TEXT:
		case VOX_F_E164:
			vox_buf_json_str(b, ((const vox_str *)p)->ptr,
					 ((const vox_str *)p)->len);
			break;
		case VOX_F_UUID:
			vox_buf_json_str(b, ((const vox_uuid *)p)->s,
					 strnlen(((const vox_uuid *)p)->s, 37));
			break;
		case VOX_F_TS: {
			char ts[64];
			vox_time_rfc3339(ts, p);
			vox_buf_json_str(b, ts, strlen(ts));
			break;
		}
		case VOX_F_INT:
			vox_buf_printf(b, "%" PRId64, *(const int64_t *)p);
			break;
		case VOX_F_FLOAT:
			json_double(b, *(const double *)p);
			break;
		case VOX_F_ENUM: {
			int v = *(const int *)p;
			int nchoices = 0;
			while (f->choices[nchoices])
				nchoices++;
			const char *name = v >= 1 && v <= nchoices ? f->choices[v - 1] : "?";
			vox_buf_json_str(b, name, strlen(name));
			break;
		}
		default: /* never present (field_present) */
			break;
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
	vox_event_json_into(&b, ev);
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
	for (size_t i = 0; i < k->schema.nfields; i++)
		if (k->schema.fields[i].kind == VOX_F_TS && strlen(k->schema.fields[i].key) == n &&
		    memcmp(k->schema.fields[i].key, key, n) == 0)
			return true;
	return false;
}

bool vox_event_str_fits(vox_event_kind kind, const char *key, vox_str v)
{
	if ((unsigned)kind >= VOX_EVENT_KIND_COUNT || v.ptr == NULL)
		return false;
	const kind_def *k = &kinds[kind];
	for (size_t i = 0; i < k->schema.nfields; i++) {
		const vox_field *f = &k->schema.fields[i];
		if (strcmp(f->key, key) != 0)
			continue;
		if (f->kind != VOX_F_EVENT_ID && f->kind != VOX_F_ID && f->kind != VOX_F_TEXT &&
		    f->kind != VOX_F_E164)
			return false;
		return vox_field_check_str(f, v.ptr, v.len, NULL) == VOX_OK;
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
	if (!vox_parse_decimal(&u, s, n))
		return false;
	*v = (int64_t)u;
	return true;
}

bool vox_time_parse_rfc3339(vox_time *out, const char *s, size_t n)
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
