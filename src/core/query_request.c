/*
 * query_request.c - vox-query's requests and cursors. Requests are read with the
 * bounded reader (core/mp.h); nothing here allocates or touches a socket.
 */
#include "core/query_request.h"

#include "core/buf.h"
#include "core/codec.h"
#include "core/mp.h"

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
	for (int i = 0; i < 8; i++)
		raw[2 + i] = (uint8_t)((uint64_t)c->key >> (56 - 8 * i));
	if (kind == VOX_QCURSOR_CALLS)
		memcpy(raw + 10, c->id, 16);
	sodium_bin2base64(out, VOX_QCURSOR_MAX, raw, n,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool vox_qcursor_decode(vox_qcursor_kind kind, const char *s, size_t n,
			vox_qcursor *out)
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
	uint64_t key = 0;
	for (int i = 0; i < 8; i++)
		key = (key << 8) | raw[2 + i];
	memset(out, 0, sizeof(*out));
	out->key = (int64_t)key;
	if (kind == VOX_QCURSOR_CALLS)
		memcpy(out->id, raw + 10, 16);
	return true;
}

/* ---- requests ------------------------------------------------------------ */

static vox_status refuse(char *err, size_t errlen, const char *fmt, ...)
	VOX_PRINTF(3, 4);

static vox_status refuse(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return VOX_E_INVALID;
}

/* One key of a request: its name, its VOX_QK_ bit and, for enums, the
 * values it takes. */
typedef struct qkey {
	const char *name;
	unsigned bit;
	const char *const *choices;
} qkey;

static const char *const types[] = {"topup", "deduction", "refund", NULL};
static const char *const statuses[] = {"pending", "in_progress", "completed",
				       "failed", NULL};
static const char *const directions[] = {"inbound", "outbound", NULL};

static const qkey keys[] = {
	{"limit", VOX_QK_LIMIT, NULL},
	{"before", VOX_QK_BEFORE, NULL},
	{"type", VOX_QK_TYPE, types},
	{"status", VOX_QK_STATUS, statuses},
	{"direction", VOX_QK_DIRECTION, directions},
	{"since", VOX_QK_SINCE, NULL},
	{"until", VOX_QK_UNTIL, NULL},
	{"call_id", VOX_QK_CALL_ID, NULL},
	{"contact_id", VOX_QK_CONTACT_ID, NULL},
	{"phone", VOX_QK_PHONE, NULL},
};

static const qkey *find_key(const char *k, uint32_t kl)
{
	for (size_t i = 0; i < VOX_NELEM(keys); i++)
		if (strlen(keys[i].name) == kl && memcmp(keys[i].name, k, kl) == 0)
			return &keys[i];
	return NULL;
}

/* An enum value into out (sized for the longest choice). */
static vox_status read_enum(vox_mp *r, const qkey *key, char *out,
			    size_t outlen, char *err, size_t errlen)
{
	const char *s;
	uint32_t n;
	if (vox_mp_peek(r) == VOX_MP_STR && vox_mp_str(r, &s, &n) == VOX_MP_OK &&
	    vox_choice_index(key->choices, s, n) >= 0 && n < outlen) {
		memcpy(out, s, n);
		out[n] = '\0';
		return VOX_OK;
	}
	char list[80];
	vox_choice_join(list, sizeof(list), key->choices, ", ");
	return refuse(err, errlen, "%s: must be one of %s", key->name, list);
}

static vox_status read_uuid(vox_mp *r, const char *name, vox_uuid *out,
			    char *err, size_t errlen)
{
	const char *s;
	uint32_t n;
	if (vox_mp_peek(r) != VOX_MP_STR || vox_mp_str(r, &s, &n) != VOX_MP_OK ||
	    !vox_uuid_parse(s, n, out))
		return refuse(err, errlen,
			      "%s: must be a UUID (36 characters, 8-4-4-4-12 hex)",
			      name);
	return VOX_OK;
}

static vox_status read_time_us(vox_mp *r, const char *name, int64_t *us,
			       char *err, size_t errlen)
{
	vox_time t;
	vox_error de;
	if (vox_time_read(r, name, &t, &de) != VOX_OK)
		return refuse(err, errlen, "%s", de.message);
	*us = t.sec * 1000000 + t.nsec / 1000;
	return VOX_OK;
}

/* The value of one allowed key, not nil. */
static vox_status read_value(vox_mp *r, const qkey *key, vox_qreq *q,
			     vox_qcursor_kind kind, char *err, size_t errlen)
{
	switch (key->bit) {
	case VOX_QK_LIMIT: {
		int64_t v;
		if (vox_mp_peek(r) != VOX_MP_INT || vox_mp_int(r, &v) != VOX_MP_OK ||
		    v < 1 || v > VOX_QUERY_MAX_LIMIT)
			return refuse(err, errlen,
				      "limit: must be an integer from 1 to %d",
				      VOX_QUERY_MAX_LIMIT);
		q->limit = (int)v;
		return VOX_OK;
	}
	case VOX_QK_BEFORE: {
		const char *s;
		uint32_t n;
		if (vox_mp_peek(r) != VOX_MP_STR || vox_mp_str(r, &s, &n) != VOX_MP_OK ||
		    !vox_qcursor_decode(kind, s, n, &q->before))
			return refuse(err, errlen,
				      "before: must be the `next` of a previous page"
				      " of this list");
		return VOX_OK;
	}
	case VOX_QK_TYPE:
		return read_enum(r, key, q->type, sizeof(q->type), err, errlen);
	case VOX_QK_STATUS:
		return read_enum(r, key, q->status, sizeof(q->status), err, errlen);
	case VOX_QK_DIRECTION:
		return read_enum(r, key, q->direction, sizeof(q->direction), err,
				 errlen);
	case VOX_QK_SINCE:
		return read_time_us(r, key->name, &q->since_us, err, errlen);
	case VOX_QK_UNTIL:
		return read_time_us(r, key->name, &q->until_us, err, errlen);
	case VOX_QK_CALL_ID:
		return read_uuid(r, key->name, &q->call_id, err, errlen);
	case VOX_QK_CONTACT_ID:
		return read_uuid(r, key->name, &q->contact_id, err, errlen);
	case VOX_QK_PHONE: {
		const char *s;
		uint32_t n;
		if (vox_mp_peek(r) != VOX_MP_STR || vox_mp_str(r, &s, &n) != VOX_MP_OK ||
		    !vox_e164_ok(s, n) || n >= sizeof(q->phone))
			return refuse(err, errlen,
				      "phone: must be E.164 (+ then 8 to 15 digits)");
		memcpy(q->phone, s, n);
		q->phone[n] = '\0';
		return VOX_OK;
	}
	default:
		return refuse(err, errlen, "%s: not understood", key->name);
	}
}

vox_status vox_qreq_parse(vox_qreq *q, unsigned allowed, vox_qcursor_kind kind,
			  const void *data, size_t len, char *err, size_t errlen)
{
	vox_mp r;
	uint32_t n = 0;
	unsigned seen = 0;
	memset(q, 0, sizeof(*q));
	q->limit = VOX_QUERY_DEFAULT_LIMIT;
	if (len > VOX_QUERY_MAX_REQUEST) {
		snprintf(err, errlen, "request: larger than %d bytes",
			 VOX_QUERY_MAX_REQUEST);
		return VOX_E_TOO_LARGE;
	}
	if (len == 0)
		return VOX_OK;
	vox_mp_init(&r, data, len);
	if (vox_mp_peek(&r) != VOX_MP_MAP || vox_mp_map(&r, &n) != VOX_MP_OK)
		return refuse(err, errlen, "request: must be a msgpack map");
	for (uint32_t i = 0; i < n; i++) {
		const char *k;
		uint32_t kl;
		if (vox_mp_peek(&r) != VOX_MP_STR || vox_mp_str(&r, &k, &kl) != VOX_MP_OK)
			return refuse(err, errlen, "request: keys must be strings");
		const qkey *key = find_key(k, kl);
		bool own = key && (allowed & key->bit);
		/* as in events: a key of this endpoint given twice is refused,
		 * even if one of the two is nil; repeated unknown keys are not */
		if (own && (seen & key->bit))
			return refuse(err, errlen, "%s: given twice", key->name);
		if (own)
			seen |= key->bit;
		if (!own || vox_mp_peek(&r) == VOX_MP_NIL) {
			/* unknown to this endpoint, or nil (absent): skip it */
			if (vox_mp_skip(&r) != VOX_MP_OK)
				return refuse(err, errlen, "request: not valid msgpack");
			continue;
		}
		if (vox_mp_peek(&r) == VOX_MP_INVALID)
			return refuse(err, errlen, "request: not valid msgpack");
		vox_status st = read_value(&r, key, q, kind, err, errlen);
		if (st != VOX_OK)
			return st;
		q->has |= key->bit;
	}
	if (vox_mp_left(&r) != 0)
		return refuse(err, errlen, "request: bytes after the map");
	if ((q->has & VOX_QK_SINCE) && (q->has & VOX_QK_UNTIL) &&
	    q->since_us >= q->until_us)
		return refuse(err, errlen, "since: must be before until");
	return VOX_OK;
}
