/*
 * query_request.c - vox-query's requests and cursors. Requests are read by
 * the schema decoder (core/schema.h); nothing here allocates or touches a
 * socket.
 */
#include "core/query_request.h"

#include "core/buf.h"
#include "core/contract.h"
#include "core/schema.h"

#include <sodium.h>

#define CURSOR_VERSION 1

/* ---- cursors ------------------------------------------------------------- */

static size_t cursor_len(vox_qcursor_kind kind)
{
	return 2 + 8 + (kind == VOX_QCURSOR_CALLS ? 16 : 0);
}

void vox_qcursor_encode(vox_qcursor_kind kind, const vox_qcursor *c,
			char out[VOX_QCURSOR_MAX])
{
	uint8_t raw[2 + 8 + 16];
	size_t n = cursor_len(kind);
	raw[0] = CURSOR_VERSION;
	raw[1] = (uint8_t)kind;
	vox_be_put(raw + 2, (uint64_t)c->key, 8);
	if (kind == VOX_QCURSOR_CALLS)
		memcpy(raw + 10, c->id, 16);
	sodium_bin2base64(out, VOX_QCURSOR_MAX, raw, n,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool vox_qcursor_decode(vox_qcursor *out, vox_qcursor_kind kind, const char *s,
			size_t n)
{
	uint8_t raw[2 + 8 + 16 + 1];
	size_t got = 0;
	const char *end = NULL;
	if (n == 0 || n >= VOX_QCURSOR_MAX)
		return false;
	if (sodium_base642bin(raw, sizeof(raw), s, n, NULL, &got, &end,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != s + n || got != cursor_len(kind) ||
	    raw[0] != CURSOR_VERSION || raw[1] != (uint8_t)kind)
		return false;
	uint64_t key = vox_be_get(raw + 2, 8);
	memset(out, 0, sizeof(*out));
	out->key = (int64_t)key;
	if (kind == VOX_QCURSOR_CALLS)
		memcpy(out->id, raw + 10, 16);
	return true;
}

/* ---- requests ------------------------------------------------------------ */

/* What the schema decoder writes; vox_qreq_parse turns it into a vox_qreq. */
typedef struct raw {
	int64_t limit;
	vox_qcursor before;
	int type, status, direction; /* index in the choices + 1 */
	vox_time since, until;
	vox_uuid call_id, contact_id;
	vox_str phone;
} raw;

/* The field of each VOX_QK_ bit: VOX_QK_x == 1u << I_x. */
enum {
	I_LIMIT, I_BEFORE, I_TYPE, I_STATUS, I_DIRECTION, I_SINCE, I_UNTIL,
	I_CALL_ID, I_CONTACT_ID, I_PHONE,
};
_Static_assert(VOX_QK_LIMIT == 1u << I_LIMIT && VOX_QK_PHONE == 1u << I_PHONE &&
		       VOX_QK_SINCE == 1u << I_SINCE,
	       "VOX_QK_ bits follow the field table");

static const char *const types[] = {"topup", "deduction", "refund", NULL};
static const char *const statuses[] = {"pending", "in_progress", "completed",
				       "failed", NULL};
static const char *const directions[] = {"inbound", "outbound", NULL};

/* before: the `next` of a page of this list (ctx: its vox_qcursor_kind). */
static vox_status read_before(vox_mp *r, const vox_field *f, void *out,
			      void *ctx, vox_error *err)
{
	const char *s;
	uint32_t n;
	vox_qcursor_kind kind = *(const vox_qcursor_kind *)ctx;
	if (vox_mp_peek(r) != VOX_MP_STR || vox_mp_str(r, &s, &n) != VOX_MP_OK ||
	    !vox_qcursor_decode(&((raw *)out)->before, kind, s, n))
		return vox_error_set(err, VOX_E_INVALID, "bad_cursor", f->key,
				     "must be the `next` of a previous page of"
				     " this list");
	return VOX_OK;
}

#define R(f) offsetof(raw, f)
static const vox_field fields[] = {
	[I_LIMIT] = {"limit", VOX_F_INT, false, 1, VOX_QUERY_MAX_LIMIT, NULL, R(limit), 0, NULL},
	[I_BEFORE] = {"before", VOX_F_CUSTOM, false, 0, 0, NULL, R(before), 0, read_before},
	[I_TYPE] = {"type", VOX_F_ENUM, false, 0, 0, types, R(type), 0, NULL},
	[I_STATUS] = {"status", VOX_F_ENUM, false, 0, 0, statuses, R(status), 0, NULL},
	[I_DIRECTION] = {"direction", VOX_F_ENUM, false, 0, 0, directions, R(direction), 0, NULL},
	[I_SINCE] = {"since", VOX_F_TS, false, 0, 0, NULL, R(since), 0, NULL},
	[I_UNTIL] = {"until", VOX_F_TS, false, 0, 0, NULL, R(until), 0, NULL},
	[I_CALL_ID] = {"call_id", VOX_F_UUID, false, 0, 0, NULL, R(call_id), 0, NULL},
	[I_CONTACT_ID] = {"contact_id", VOX_F_UUID, false, 0, 0, NULL, R(contact_id), 0, NULL},
	[I_PHONE] = {"phone", VOX_F_E164, false, 0, 0, NULL, R(phone), 0, NULL},
};
#undef R

static const vox_schema schema = {fields, VOX_NELEM(fields),
				  VOX_QUERY_MAX_REQUEST, 0, true,
				  "request"};

const vox_schema *vox_qreq_schema(void)
{
	return &schema;
}

const vox_query_def vox_query_defs[VOX_Q_COUNT] = {
	[VOX_Q_WALLET] = {"wallet", 0},
	[VOX_Q_TRANSACTIONS] = {"transactions", VOX_QK_LIMIT | VOX_QK_BEFORE | VOX_QK_TYPE},
	[VOX_Q_CALLS] = {"calls", VOX_QK_LIMIT | VOX_QK_BEFORE | VOX_QK_STATUS |
					  VOX_QK_DIRECTION | VOX_QK_SINCE | VOX_QK_UNTIL},
	[VOX_Q_CALL] = {"call", VOX_QK_CALL_ID},
	[VOX_Q_CONTACT] = {"contact", VOX_QK_CONTACT_ID | VOX_QK_PHONE},
	[VOX_Q_HOT_LEADS] = {"hot_leads", VOX_QK_LIMIT},
	[VOX_Q_HOLDS] = {"holds", VOX_QK_LIMIT},
};

/* The name of an enum value the decoder checked. */
static void choice(char *out, size_t outlen, const char *const *choices, int v)
{
	snprintf(out, outlen, "%s", v > 0 ? choices[v - 1] : "");
}

static int64_t unix_us(const vox_time *t)
{
	return t->sec * 1000000 + t->nsec / 1000;
}

vox_status vox_qreq_parse(vox_qreq *q, unsigned allowed, vox_qcursor_kind kind,
			  const void *data, size_t len, vox_error *err)
{
	raw v;
	uint32_t has = 0;
	memset(q, 0, sizeof(*q));
	memset(&v, 0, sizeof(v));
	q->limit = VOX_QUERY_DEFAULT_LIMIT;
	vox_status st = vox_schema_decode(&v, &has, &schema, allowed, data, len,
					  &kind, err);
	if (st != VOX_OK)
		return st;
	if ((has & VOX_QK_SINCE) && (has & VOX_QK_UNTIL) &&
	    unix_us(&v.since) >= unix_us(&v.until))
		return vox_error_set(err, VOX_E_INVALID, "out_of_range", "since",
				     "must be before until");
	q->has = has;
	if (has & VOX_QK_LIMIT)
		q->limit = (int)v.limit;
	q->before = v.before;
	choice(q->type, sizeof(q->type), types, v.type);
	choice(q->status, sizeof(q->status), statuses, v.status);
	choice(q->direction, sizeof(q->direction), directions, v.direction);
	q->since_us = unix_us(&v.since);
	q->until_us = unix_us(&v.until);
	q->call_id = v.call_id;
	q->contact_id = v.contact_id;
	if (v.phone.ptr) /* E.164: at most 16 bytes */
		snprintf(q->phone, sizeof(q->phone), "%.*s", (int)v.phone.len,
			 v.phone.ptr);
	return VOX_OK;
}
