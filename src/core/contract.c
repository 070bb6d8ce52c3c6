/*
 * contract.c - JSON Schema from the field tables (see contract.h).
 */
#include "core/contract.h"

#include <inttypes.h>
#include <string.h>

#define ID_MAX 128 /* VOX_F_EVENT_ID */
#define OUTSIDE_ID_MAX 255

static void str(vox_buf *out, const char *s)
{
	vox_buf_json_str(out, s, strlen(s));
}

/* "{" and the members every schema starts with ($schema and $id unless
 * embedded, title, description), without a comma after them. */
static void schema_head(vox_buf *out, const char *id, const char *title,
			const char *description)
{
	vox_buf_putc(out, '{');
	if (id) {
		vox_buf_puts(out, "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
			     "\"$id\":");
		str(out, id);
		vox_buf_putc(out, ',');
	}
	vox_buf_puts(out, "\"title\":");
	str(out, title);
	vox_buf_puts(out, ",\"description\":");
	str(out, description);
}

void vox_contract_field(vox_buf *out, const vox_field *f)
{
	switch (f->kind) {
	case VOX_F_EVENT_ID:
		vox_buf_printf(out, "{\"type\":\"string\",\"minLength\":1,\"maxLength\":%d,"
			       "\"pattern\":\"^[ -~]+$\",\"description\":\"1..%d printable"
			       " ASCII characters\"}", ID_MAX, ID_MAX);
		break;
	case VOX_F_ID:
		vox_buf_printf(out, "{\"type\":\"string\",\"minLength\":1,\"maxLength\":%d,"
			       "\"pattern\":\"^[!-~]+$\",\"description\":\"an outside"
			       " system's id: 1..%d printable ASCII characters, no"
			       " spaces\"}", OUTSIDE_ID_MAX, OUTSIDE_ID_MAX);
		break;
	case VOX_F_TEXT:
		vox_buf_printf(out, "{\"type\":\"string\",\"maxLength\":%" PRId64 ","
			       "\"description\":\"UTF-8 without NUL, at most %" PRId64
			       " bytes\"}", f->max, f->max);
		break;
	case VOX_F_UUID:
		vox_buf_puts(out, "{\"type\":\"string\",\"format\":\"uuid\",\"pattern\":"
			     "\"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
			     "[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$\"}");
		break;
	case VOX_F_E164:
		vox_buf_puts(out, "{\"type\":\"string\",\"pattern\":\"^\\\\+[1-9][0-9]{7,14}$\","
			     "\"description\":\"E.164\"}");
		break;
	case VOX_F_TS:
		vox_buf_puts(out, "{\"type\":\"string\",\"format\":\"date-time\","
			     "\"description\":\"on the wire a msgpack timestamp (ext -1)"
			     " or integer milliseconds since 1970, between 2000-01-01"
			     " and 2100-01-01\"}");
		break;
	case VOX_F_INT:
		vox_buf_printf(out, "{\"type\":\"integer\",\"minimum\":%" PRId64
			       ",\"maximum\":%" PRId64 "}", f->min, f->max);
		break;
	case VOX_F_FLOAT:
		vox_buf_printf(out, "{\"type\":\"number\",\"minimum\":%" PRId64
			       ",\"maximum\":%" PRId64 "}", f->min, f->max);
		break;
	case VOX_F_ENUM:
		vox_buf_puts(out, "{\"type\":\"string\",\"enum\":[");
		for (size_t i = 0; f->choices && f->choices[i]; i++) {
			if (i)
				vox_buf_putc(out, ',');
			str(out, f->choices[i]);
		}
		vox_buf_puts(out, "]}");
		break;
	case VOX_F_BOOL:
		vox_buf_puts(out, "{\"type\":\"boolean\"}");
		break;
	case VOX_F_BYTES:
		vox_buf_printf(out, "{\"type\":\"string\",\"description\":\"a msgpack"
			       " str (text as is) or bin (base64 in JSON) of at most %"
			       PRId64 " bytes\"}", f->max);
		break;
	case VOX_F_BIN:
		vox_buf_printf(out, "{\"type\":\"string\",\"contentEncoding\":\"base64\","
			       "\"description\":\"a msgpack bin of %" PRId64 "..%" PRId64
			       " bytes, base64 in JSON\"}", f->min, f->max);
		break;
	case VOX_F_CUSTOM:
		/* read by its own function: described, not constrained */
		if (strcmp(f->key, "before") == 0)
			vox_buf_puts(out, "{\"type\":\"string\",\"description\":\"the"
				     " next cursor of the page before\"}");
		else if (strcmp(f->key, "metadata") == 0)
			vox_buf_puts(out, "{\"type\":\"object\",\"description\":\"a map"
				     " of text, kept as JSON\"}");
		else
			vox_buf_puts(out, "{}");
		break;
	}
}

void vox_contract_json_schema(vox_buf *out, const vox_schema *s, uint32_t only,
			      const char *id, const char *title,
			      const char *description, const char *extra)
{
	schema_head(out, id, title, description);
	vox_buf_puts(out, ",\"type\":\"object\",\"properties\":{");
	bool first = true;
	for (size_t i = 0; i < s->nfields; i++) {
		if (!(only & (1u << i)))
			continue;
		if (!first)
			vox_buf_putc(out, ',');
		first = false;
		str(out, s->fields[i].key);
		vox_buf_putc(out, ':');
		vox_contract_field(out, &s->fields[i]);
	}
	vox_buf_puts(out, "},\"required\":[");
	first = true;
	for (size_t i = 0; i < s->nfields; i++) {
		if (!(only & (1u << i)) || !s->fields[i].required)
			continue;
		if (!first)
			vox_buf_putc(out, ',');
		first = false;
		str(out, s->fields[i].key);
	}
	vox_buf_puts(out, "],\"additionalProperties\":true");
	if (extra && *extra) {
		vox_buf_putc(out, ',');
		vox_buf_puts(out, extra);
	}
	vox_buf_putc(out, '}');
}

/* ---- replies ------------------------------------------------------------ */

/* RF: always there; RN: a column that may be NULL, whose key is then left
 * out of the row (the packer skips NULLs) */
#define RF(k, t) {k, t, false, false, NULL}
#define RN(k, t) {k, t, false, true, NULL}
/* a page's cursor: nil on the last page */
#define NEXT {"next", VOX_R_STRING, true, true, NULL}
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const vox_rfield wallet_f[] = {
	RF("balance_pence", VOX_R_INT),     RF("debt_limit_pence", VOX_R_INT),
	RF("available_pence", VOX_R_INT),   RF("in_debt", VOX_R_BOOL),
	RF("unbilled_pence", VOX_R_INT),    RF("low_balance_pence", VOX_R_INT),
	RF("rate_per_minute", VOX_R_INT),   RF("minutes_remaining", VOX_R_INT),
	RF("held_pence", VOX_R_INT),
};
/* endpoints.c TX_COLS */
static const vox_rfield tx_f[] = {
	RF("id", VOX_R_UUID), RF("org_id", VOX_R_UUID), RF("amount_pence", VOX_R_INT),
	RF("type", VOX_R_STRING), RN("description", VOX_R_STRING),
	RN("stripe_payment_intent_id", VOX_R_STRING),
	RN("balance_before_pence", VOX_R_INT), RN("balance_after_pence", VOX_R_INT),
	RF("created_at", VOX_R_TS), RN("seq", VOX_R_INT), RN("call_id", VOX_R_UUID),
	RN("stripe_refund_id", VOX_R_STRING), RN("shortfall_pence", VOX_R_INT),
	RN("event_id", VOX_R_STRING),
};
/* endpoints.c CALL_COLS */
static const vox_rfield call_f[] = {
	RF("id", VOX_R_UUID), RF("org_id", VOX_R_UUID), RN("contact_id", VOX_R_UUID),
	RN("call_direction", VOX_R_STRING), RN("from_number", VOX_R_STRING),
	RN("to_number", VOX_R_STRING), RN("duration_seconds", VOX_R_INT),
	RN("status", VOX_R_STRING), RN("transcript", VOX_R_STRING),
	RN("summary", VOX_R_STRING), RN("sentiment_label", VOX_R_STRING),
	RN("sentiment_score", VOX_R_NUMBER), RN("sentiment_summary", VOX_R_STRING),
	RN("sentiment_urgency", VOX_R_STRING), RN("phone_number", VOX_R_STRING),
	RN("caller_name", VOX_R_STRING), RN("vapi_call_id", VOX_R_STRING),
	RN("recording_url", VOX_R_STRING), RN("created_at", VOX_R_TS),
	RN("updated_at", VOX_R_TS), RN("ended_at", VOX_R_TS),
};
/* endpoints.c CONTACT_COLS */
static const vox_rfield contact_f[] = {
	RF("id", VOX_R_UUID), RF("org_id", VOX_R_UUID), RN("phone", VOX_R_STRING),
	RN("email", VOX_R_STRING), RN("first_name", VOX_R_STRING),
	RN("last_name", VOX_R_STRING), RN("lead_status", VOX_R_STRING),
	RN("lead_score", VOX_R_INT), RN("notes", VOX_R_STRING),
	RN("last_contacted_at", VOX_R_TS), RN("created_at", VOX_R_TS),
	RN("updated_at", VOX_R_TS), RN("lead_scored_at", VOX_R_TS),
};
/* endpoints.c ALERT_COLS: the keys of alert.hot_lead, as stored */
static const vox_rfield lead_f[] = {
	RF("alert_id", VOX_R_UUID), RF("org_id", VOX_R_UUID), RN("contact_id", VOX_R_UUID),
	RN("call_id", VOX_R_UUID), RN("lead_name", VOX_R_STRING),
	RN("lead_phone", VOX_R_STRING), RN("lead_score", VOX_R_INT),
	RN("urgency_level", VOX_R_STRING), RN("service_interest", VOX_R_STRING),
	RN("summary", VOX_R_STRING), RN("created_at", VOX_R_TS),
};
static const vox_rshape tx_s = {tx_f, NELEM(tx_f)};
static const vox_rshape call_s = {call_f, NELEM(call_f)};
static const vox_rshape lead_s = {lead_f, NELEM(lead_f)};
static const vox_rfield tx_page_f[] = {{"items", VOX_R_ROWS, false, false, &tx_s},
				       NEXT};
static const vox_rfield call_page_f[] = {{"items", VOX_R_ROWS, false, false, &call_s},
					 NEXT};
static const vox_rfield leads_f[] = {{"items", VOX_R_ROWS, false, false, &lead_s}};
/* endpoints.c Q_HOLDS */
static const vox_rfield hold_f[] = {
	RF("call_id", VOX_R_UUID), RF("amount_pence", VOX_R_INT), RF("fits", VOX_R_BOOL),
	RF("created_at", VOX_R_TS), RF("expires_at", VOX_R_TS),
};
static const vox_rshape hold_s = {hold_f, NELEM(hold_f)};
static const vox_rfield holds_f[] = {{"items", VOX_R_ROWS, false, false, &hold_s}};
static const vox_rfield authorize_f[] = {
	RF("allowed", VOX_R_BOOL), RF("reason", VOX_R_STRING),
	RF("available_pence", VOX_R_INT), RF("held_pence", VOX_R_INT),
	{"hold", VOX_R_STRING, false, true, NULL},
};
static const vox_rfield cred_put_f[] = {RF("id", VOX_R_UUID), RF("key_version", VOX_R_INT)};
static const vox_rfield cred_get_f[] = {RF("sealed", VOX_R_BYTES)};
static const vox_rfield cred_item_f[] = {
	RF("provider", VOX_R_STRING), RF("type", VOX_R_STRING),
	RF("key_version", VOX_R_INT), RF("is_active", VOX_R_BOOL),
	RN("updated_at", VOX_R_TS),
};
static const vox_rshape cred_item_s = {cred_item_f, NELEM(cred_item_f)};
static const vox_rfield cred_list_f[] = {{"items", VOX_R_ROWS, false, false, &cred_item_s}};
static const vox_rfield cred_delete_f[] = {RF("deleted", VOX_R_BOOL)};

static const struct {
	const char *subject;
	vox_rshape shape;
} replies[] = {
	{"query.wallet", {wallet_f, NELEM(wallet_f)}},
	{"query.transactions", {tx_page_f, NELEM(tx_page_f)}},
	{"query.calls", {call_page_f, NELEM(call_page_f)}},
	{"query.call", {call_f, NELEM(call_f)}},
	{"query.contact", {contact_f, NELEM(contact_f)}},
	{"query.hot_leads", {leads_f, NELEM(leads_f)}},
	{"query.holds", {holds_f, NELEM(holds_f)}},
	{"billing.authorize", {authorize_f, NELEM(authorize_f)}},
	{"credentials.put", {cred_put_f, NELEM(cred_put_f)}},
	{"credentials.get", {cred_get_f, NELEM(cred_get_f)}},
	{"credentials.list", {cred_list_f, NELEM(cred_list_f)}},
	{"credentials.delete", {cred_delete_f, NELEM(cred_delete_f)}},
};

const vox_rshape *vox_reply_shape(const char *subject)
{
	for (size_t i = 0; i < NELEM(replies); i++)
		if (strcmp(replies[i].subject, subject) == 0)
			return &replies[i].shape;
	return NULL;
}

static void rtype(vox_buf *out, const vox_rfield *f);

static void rshape_body(vox_buf *out, const vox_rshape *s)
{
	vox_buf_puts(out, "\"type\":\"object\",\"properties\":{");
	for (size_t i = 0; i < s->nfields; i++) {
		if (i)
			vox_buf_putc(out, ',');
		str(out, s->fields[i].key);
		vox_buf_putc(out, ':');
		rtype(out, &s->fields[i]);
	}
	vox_buf_puts(out, "},\"required\":[");
	bool first = true;
	for (size_t i = 0; i < s->nfields; i++) {
		if (s->fields[i].optional)
			continue;
		if (!first)
			vox_buf_putc(out, ',');
		first = false;
		str(out, s->fields[i].key);
	}
	vox_buf_puts(out, "],\"additionalProperties\":true");
}

static void rtype(vox_buf *out, const vox_rfield *f)
{
	static const char *const names[] = {
		[VOX_R_INT] = "integer", [VOX_R_NUMBER] = "number",
		[VOX_R_BOOL] = "boolean", [VOX_R_STRING] = "string",
		[VOX_R_UUID] = "string", [VOX_R_TS] = "string",
		[VOX_R_BYTES] = "string", [VOX_R_ROWS] = "array",
	};
	vox_buf_puts(out, "{\"type\":");
	if (f->nullable)
		vox_buf_printf(out, "[\"%s\",\"null\"]", names[f->type]);
	else
		vox_buf_printf(out, "\"%s\"", names[f->type]);
	if (f->type == VOX_R_UUID)
		vox_buf_puts(out, ",\"format\":\"uuid\"");
	else if (f->type == VOX_R_TS)
		vox_buf_puts(out, ",\"format\":\"date-time\"");
	else if (f->type == VOX_R_BYTES)
		vox_buf_puts(out, ",\"contentEncoding\":\"base64\"");
	else if (f->type == VOX_R_ROWS) {
		vox_buf_puts(out, ",\"items\":{");
		rshape_body(out, f->rows);
		vox_buf_putc(out, '}');
	}
	vox_buf_putc(out, '}');
}

void vox_contract_reply_schema(vox_buf *out, const vox_rshape *s, const char *id,
			       const char *title, const char *description)
{
	schema_head(out, id, title, description);
	vox_buf_putc(out, ',');
	rshape_body(out, s);
	vox_buf_putc(out, '}');
}
