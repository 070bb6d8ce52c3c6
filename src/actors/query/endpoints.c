/*
 * endpoints.c - the query.* endpoints. Each one reads its org from the
 * subject and its request with core/query_request.c, runs its prepared statements
 * through qdb.c in one round trip, and packs the rows as msgpack maps keyed
 * by column name. Rows come back in binary format and are packed by column
 * type, so the SELECT lists below are the contract's row shapes.
 */
#include "actors/query/query.h"

#include "core/billing.h"
#include "core/buf.h"
#include "core/codec.h"
#include "io/log.h"
#include "io/pg.h"

#include <msgpack.h>

/* Unix time of the PostgreSQL epoch (2000-01-01), in microseconds. */
#define PG_EPOCH_US INT64_C(946684800000000)

/* Column lists: the seed schema's columns and the ones vox added. */
#define TX_COLS                                                                \
	"id, org_id, amount_pence, type, description, stripe_payment_intent_id," \
	" balance_before_pence, balance_after_pence, created_at, seq, call_id,"  \
	" stripe_refund_id, shortfall_pence, event_id"
#define CALL_COLS                                                              \
	"id, org_id, contact_id, call_direction, from_number, to_number,"        \
	" duration_seconds, status, transcript, summary, sentiment_label,"       \
	" sentiment_score::float8 AS sentiment_score, sentiment_summary,"        \
	" sentiment_urgency, phone_number, caller_name, vapi_call_id,"           \
	" recording_url, created_at, updated_at, ended_at"
#define CONTACT_COLS                                                           \
	"id, org_id, phone, email, first_name, last_name, lead_status,"          \
	" lead_score, notes, last_contacted_at, created_at, updated_at,"         \
	" lead_scored_at"
/* The keys of alert.hot_lead. */
#define ALERT_COLS                                                             \
	"id AS alert_id, org_id, contact_id, call_id, lead_name, lead_phone,"    \
	" lead_score, urgency_level, service_interest, summary, created_at"
#define US_TO_TS(p) "('epoch'::timestamptz + " p "::int8 * interval '1 microsecond')"

/* Every statement names its org as well: RLS decides what is visible, the
 * filter lets the planner use the (org_id, ...) indexes. */
enum {
	Q_ORG,
	Q_WALLET,
	Q_TX,
	Q_TX_TYPE,
	Q_CALLS,
	Q_CALL,
	Q_CONTACT_ID,
	Q_CONTACT_PHONE,
	Q_HOT_LEADS,
	Q_HOLDS,
};

const vox_qstmt vox_query_stmts[] = {
	[Q_ORG] = {"q_org", "SELECT 1 FROM organizations WHERE id = $1::uuid", 1},
	[Q_WALLET] = {"q_wallet",
		      "SELECT wallet_balance_pence::int8, debt_limit_pence::int8,"
		      " unbilled_pence::int8, low_balance_pence::int8,"
		      " (SELECT COALESCE(sum(h.amount_pence), 0)::int8 FROM credit_holds h"
		      "  WHERE h.org_id = $1::uuid AND h.state = 'active')"
		      " FROM organizations WHERE id = $1::uuid", 1},
	[Q_TX] = {"q_tx",
		  "SELECT " TX_COLS " FROM credit_transactions"
		  " WHERE org_id = $1::uuid AND seq < $2::int8"
		  " ORDER BY seq DESC LIMIT $3::int", 3},
	[Q_TX_TYPE] = {"q_tx_type",
		       "SELECT " TX_COLS " FROM credit_transactions"
		       " WHERE org_id = $1::uuid AND type = $4 AND seq < $2::int8"
		       " ORDER BY seq DESC LIMIT $3::int", 4},
	/* $2,$3: the upper bound (cursor or until, exclusive); $4: since */
	[Q_CALLS] = {"q_calls",
		     "SELECT " CALL_COLS " FROM calls"
		     " WHERE org_id = $1::uuid"
		     " AND (created_at, id) < (" US_TO_TS("$2") ", $3::uuid)"
		     " AND created_at >= " US_TO_TS("$4")
		     " AND ($5::text IS NULL OR status = $5)"
		     " AND ($6::text IS NULL OR call_direction = $6)"
		     " ORDER BY created_at DESC, id DESC LIMIT $7::int", 7},
	[Q_CALL] = {"q_call",
		    "SELECT " CALL_COLS " FROM calls"
		    " WHERE org_id = $1::uuid AND id = $2::uuid", 2},
	[Q_CONTACT_ID] = {"q_contact_id",
			  "SELECT " CONTACT_COLS " FROM contacts"
			  " WHERE org_id = $1::uuid AND id = $2::uuid", 2},
	[Q_CONTACT_PHONE] = {"q_contact_phone",
			     "SELECT " CONTACT_COLS " FROM contacts"
			     " WHERE org_id = $1::uuid AND phone = $2", 2},
	[Q_HOT_LEADS] = {"q_hot_leads",
			 "SELECT " ALERT_COLS " FROM hot_lead_alerts"
			 " WHERE org_id = $1::uuid"
			 " ORDER BY created_at DESC, id DESC LIMIT $2::int", 2},
	/* the credit held by calls in progress (billing.authorize with hold) */
	[Q_HOLDS] = {"q_holds",
		     "SELECT call_id, amount_pence, fits, created_at, expires_at"
		     " FROM credit_holds WHERE org_id = $1::uuid AND state = 'active'"
		     " ORDER BY created_at DESC, call_id DESC LIMIT $2::int", 2},
};
const size_t vox_query_nstmts = VOX_NELEM(vox_query_stmts);

/* ---- binary column values ------------------------------------------------ */

static int64_t be_int(const char *p, int n)
{
	uint64_t v = vox_be_get(p, (size_t)n);
	/* sign-extend the narrower widths */
	if (n < 8 && (v >> (8 * n - 1)) & 1)
		v |= ~UINT64_C(0) << (8 * n);
	return (int64_t)v;
}

static void uuid_text(const uint8_t *b, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[36] = '\0';
}

/* Unix microseconds of a binary timestamptz. */
static int64_t ts_us(const char *p)
{
	return be_int(p, 8) + PG_EPOCH_US;
}

/* Pack one non-NULL value; false for a type this file does not know or a
 * value of the wrong width (a programming error: the SELECT lists above
 * cast to known types). */
static bool pack_value(msgpack_packer *pk, Oid type, const char *v, int len)
{
	switch (type) {
	case VOX_PG_BOOL:
		if (len != 1)
			return false;
		if (v[0])
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		return true;
	case VOX_PG_INT2:
	case VOX_PG_INT4:
	case VOX_PG_INT8: {
		int want = type == VOX_PG_INT2 ? 2 : type == VOX_PG_INT4 ? 4 : 8;
		if (len != want)
			return false;
		msgpack_pack_int64(pk, be_int(v, len));
		return true;
	}
	case VOX_PG_FLOAT8: {
		if (len != 8)
			return false;
		uint64_t bits = (uint64_t)be_int(v, 8);
		double d;
		memcpy(&d, &bits, sizeof(d));
		msgpack_pack_double(pk, d);
		return true;
	}
	case VOX_PG_TEXT:
	case VOX_PG_VARCHAR:
	case VOX_PG_NAME:
		msgpack_pack_str(pk, (size_t)len);
		msgpack_pack_str_body(pk, v, (size_t)len);
		return true;
	case VOX_PG_UUID: {
		char s[37];
		if (len != 16)
			return false;
		uuid_text((const uint8_t *)v, s);
		msgpack_pack_str(pk, 36);
		msgpack_pack_str_body(pk, s, 36);
		return true;
	}
	case VOX_PG_TIMESTAMPTZ: {
		if (len != 8)
			return false;
		int64_t us = ts_us(v);
		/* floor division: times before 1970 keep nsec in [0, 1e9) */
		int64_t sec = us / 1000000, rem = us % 1000000;
		if (rem < 0) {
			sec--;
			rem += 1000000;
		}
		vox_time t = {sec, (int32_t)(rem * 1000), true};
		vox_time_pack(pk, &t);
		return true;
	}
	default:
		return false;
	}
}

/* Row i of r as a map of its non-NULL columns. */
static bool pack_row(msgpack_packer *pk, const PGresult *r, int i)
{
	int ncols = PQnfields(r), present = 0;
	for (int c = 0; c < ncols; c++)
		present += !PQgetisnull(r, i, c);
	msgpack_pack_map(pk, (size_t)present);
	for (int c = 0; c < ncols; c++) {
		if (PQgetisnull(r, i, c))
			continue;
		vox_mp_pack_cstr(pk, PQfname(r, c));
		if (!pack_value(pk, PQftype(r, c), PQgetvalue(r, i, c),
				PQgetlength(r, i, c)))
			return false;
	}
	return true;
}

/* ---- replies ------------------------------------------------------------- */

static void reply_buf(vox_request *req, const vox_buf *b)
{
	vox_request_respond(req, b->data, b->len);
}

/* A failed vox_qdb_run: 503 when trying again may work, 500 otherwise.
 * The details go to the log, not to the client. */
static void reply_db_error(vox_request *req, vox_status st, const char *err)
{
	vox_error e;
	if (vox_status_is_transient(st)) {
		vox_request_fail(req, vox_request_db_error(&e, st));
		return;
	}
	vox_error("msg=\"query failed\" subject=%s status=%s error=\"%s\"",
		  vox_request_subject(req), vox_status_str(st), err);
	vox_request_failf(req, VOX_E_INTERNAL, "internal", NULL, "%s",
			  st == VOX_E_FORBIDDEN
				  ? "vox-query's database role is not bound by"
				    " row-level security"
				  : "internal error");
}

/* The org and the request; false when an error was answered. */
static bool begin(vox_request *req, char org[37], vox_qreq *q, unsigned allowed,
		  vox_qcursor_kind kind)
{
	size_t len;
	const char *data = vox_request_data(req, &len);
	vox_error err;
	if (!vox_request_org(req, org)) {
		vox_request_fail(req, vox_request_bad_org(&err));
		return false;
	}
	if (vox_qreq_parse(q, allowed, kind, data, len, &err) != VOX_OK) {
		vox_request_fail(req, &err); /* 413 or 400 */
		return false;
	}
	return true;
}

/* Run calls; on failure the error is answered and false returned. */
static bool run(vox_request *req, vox_query_ctx *qc, const char *org,
		const vox_qcall *calls, size_t n, PGresult **results)
{
	char err[256] = "";
	vox_status st = vox_qdb_run(results, &qc->db, org, calls, n, err, sizeof(err));
	if (st != VOX_OK) {
		reply_db_error(req, st, err);
		return false;
	}
	return true;
}

static void clear_all(PGresult **results, size_t n)
{
	for (size_t i = 0; i < n; i++)
		PQclear(results[i]);
}

/* The position of row i of a list, for its `next`. */
static void row_cursor(const PGresult *r, int i, vox_qcursor_kind kind,
		       char out[VOX_QCURSOR_MAX])
{
	vox_qcursor c;
	memset(&c, 0, sizeof(c));
	if (kind == VOX_QCURSOR_TRANSACTIONS) {
		c.key = be_int(PQgetvalue(r, i, PQfnumber(r, "seq")), 8);
	} else {
		c.key = ts_us(PQgetvalue(r, i, PQfnumber(r, "created_at")));
		memcpy(c.id, PQgetvalue(r, i, PQfnumber(r, "id")), 16);
	}
	vox_qcursor_encode(kind, &c, out);
}

/*
 * Answer {items, next} from rows (fetched with limit + 1). A page holds
 * at most limit rows, and fewer when the rows would not fit in one
 * message (long transcripts): `next` then continues after the last row
 * sent. kind 0 means a list without cursors (hot leads).
 */
static void reply_page(vox_request *req, vox_query_ctx *qc, const PGresult *rows,
		       int limit, int kind)
{
	vox_buf items, out;
	msgpack_packer pk;
	char next[VOX_QCURSOR_MAX] = "";
	int nrows = PQntuples(rows), sent = 0;
	size_t budget = qc->max_reply > 256 ? qc->max_reply - 256 : qc->max_reply;
	vox_buf_init(&items);
	vox_buf_init(&out);
	msgpack_packer_init(&pk, &items, vox_mp_buf_write);
	for (int i = 0; i < nrows && i < limit; i++) {
		size_t mark = items.len;
		if (!pack_row(&pk, rows, i)) {
			vox_error("msg=\"row cannot be packed\" subject=%s",
				  vox_request_subject(req));
			vox_request_failf(req, VOX_E_INTERNAL, "internal", NULL,
					  "internal error");
			goto out;
		}
		if (items.len > budget) {
			items.len = mark;
			break;
		}
		sent++;
	}
	if (sent == 0 && nrows > 0 && limit > 0) {
		vox_request_failf(req, VOX_E_INTERNAL, "too_large", NULL,
				  "a row is larger than a message can carry");
		goto out;
	}
	if (kind && sent < nrows)
		row_cursor(rows, sent - 1, (vox_qcursor_kind)kind, next);

	msgpack_packer_init(&pk, &out, vox_mp_buf_write);
	msgpack_pack_map(&pk, kind ? 2 : 1);
	vox_mp_pack_cstr(&pk, "items");
	msgpack_pack_array(&pk, (size_t)sent);
	vox_buf_append(&out, items.data, items.len);
	if (kind) {
		vox_mp_pack_cstr(&pk, "next");
		if (next[0]) {
			msgpack_pack_str(&pk, strlen(next));
			msgpack_pack_str_body(&pk, next, strlen(next));
		} else {
			msgpack_pack_nil(&pk);
		}
	}
	reply_buf(req, &out);
out:
	vox_buf_release(&items);
	vox_buf_release(&out);
}

/* Answer one row, or 404 (field: no such ...) when there is none. */
static void reply_row(vox_request *req, const PGresult *r, const char *field,
		      const char *text)
{
	vox_buf out;
	msgpack_packer pk;
	if (PQntuples(r) == 0) {
		vox_request_failf(req, VOX_E_NOT_FOUND, "not_found", field, "%s",
				  text);
		return;
	}
	vox_buf_init(&out);
	msgpack_packer_init(&pk, &out, vox_mp_buf_write);
	if (pack_row(&pk, r, 0)) {
		reply_buf(req, &out);
	} else {
		vox_error("msg=\"row cannot be packed\" subject=%s",
			  vox_request_subject(req));
		vox_request_failf(req, VOX_E_INTERNAL, "internal", NULL,
				  "internal error");
	}
	vox_buf_release(&out);
}

/* ---- query.wallet -------------------------------------------------------- */

void vox_query_wallet(vox_request *req, void *ctx)
{
	vox_query_ctx *qc = ctx;
	char org[37];
	vox_qreq q;
	PGresult *res[1];
	if (!begin(req, org, &q, vox_query_defs[VOX_Q_WALLET].keys, VOX_QCURSOR_TRANSACTIONS))
		return;
	const char *p[1] = {org};
	const vox_qcall calls[1] = {{Q_WALLET, p}};
	if (!run(req, qc, org, calls, 1, res))
		return;
	if (PQntuples(res[0]) != 1) {
		vox_error err;
		vox_request_fail(req, vox_request_no_org(&err));
		clear_all(res, 1);
		return;
	}
	int64_t balance = be_int(PQgetvalue(res[0], 0, 0), 8);
	int64_t debt = be_int(PQgetvalue(res[0], 0, 1), 8);
	int64_t unbilled = be_int(PQgetvalue(res[0], 0, 2), 8);
	int64_t low = be_int(PQgetvalue(res[0], 0, 3), 8);
	int64_t held = be_int(PQgetvalue(res[0], 0, 4), 8);
	clear_all(res, 1);
	/* what calls can still use: billing.authorize's rule */
	int64_t available = vox_billing_spendable(balance, debt, held);
	int64_t rate = qc->cfg.rate_per_minute;
	int64_t minutes = available > 0 ? available / rate : 0;

	const struct {
		const char *key;
		int64_t value;
	} ints[] = {
		{"balance_pence", balance},     {"debt_limit_pence", debt},
		{"available_pence", available}, {"unbilled_pence", unbilled},
		{"low_balance_pence", low},     {"rate_per_minute", rate},
		{"minutes_remaining", minutes}, {"held_pence", held},
	};
	vox_buf out;
	msgpack_packer pk;
	vox_buf_init(&out);
	msgpack_packer_init(&pk, &out, vox_mp_buf_write);
	msgpack_pack_map(&pk, VOX_NELEM(ints) + 1);
	for (size_t i = 0; i < VOX_NELEM(ints); i++) {
		vox_mp_pack_cstr(&pk, ints[i].key);
		msgpack_pack_int64(&pk, ints[i].value);
	}
	vox_mp_pack_cstr(&pk, "in_debt");
	if (balance < 0)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	reply_buf(req, &out);
	vox_buf_release(&out);
}

/* ---- lists --------------------------------------------------------------- */

/* Answer a list: 404 when the org does not exist (res[0]), else the page
 * (res[1]). */
static void reply_list(vox_request *req, vox_query_ctx *qc, PGresult **res,
		       int limit, int kind)
{
	vox_error err;
	if (PQntuples(res[0]) != 1)
		vox_request_fail(req, vox_request_no_org(&err));
	else
		reply_page(req, qc, res[1], limit, kind);
	clear_all(res, 2);
}

void vox_query_transactions(vox_request *req, void *ctx)
{
	vox_query_ctx *qc = ctx;
	char org[37], before[24], limit[16];
	vox_qreq q;
	PGresult *res[2];
	if (!begin(req, org, &q, vox_query_defs[VOX_Q_TRANSACTIONS].keys,
		   VOX_QCURSOR_TRANSACTIONS))
		return;
	snprintf(before, sizeof(before), "%" PRId64,
		 (q.has & VOX_QK_BEFORE) ? q.before.key : INT64_MAX);
	snprintf(limit, sizeof(limit), "%d", q.limit + 1);
	const char *org_p[1] = {org};
	const char *p[4] = {org, before, limit, q.type};
	const vox_qcall calls[2] = {
		{Q_ORG, org_p},
		{(q.has & VOX_QK_TYPE) ? Q_TX_TYPE : Q_TX, p},
	};
	if (run(req, qc, org, calls, 2, res))
		reply_list(req, qc, res, q.limit, VOX_QCURSOR_TRANSACTIONS);
}

/* (a_us, a_id) < (b_us, b_id) */
static bool pos_before(int64_t a_us, const uint8_t *a_id, int64_t b_us,
		       const uint8_t *b_id)
{
	return a_us < b_us || (a_us == b_us && memcmp(a_id, b_id, 16) < 0);
}

void vox_query_calls(vox_request *req, void *ctx)
{
	vox_query_ctx *qc = ctx;
	/* far enough on either side of any call: years 1 and 10000 */
	static const int64_t far_past = INT64_C(-62135596800000000);
	static const int64_t far_future = INT64_C(253402300800000000);
	static const uint8_t id_max[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff};
	static const uint8_t id_min[16] = {0};
	char org[37], upper[24], upper_id[37], lower[24], limit[16];
	vox_qreq q;
	PGresult *res[2];
	if (!begin(req, org, &q, vox_query_defs[VOX_Q_CALLS].keys,
		   VOX_QCURSOR_CALLS))
		return;
	/* The page ends below the cursor and below until (exclusive: the
	 * smallest id at that instant), whichever is lower. */
	int64_t up = far_future;
	const uint8_t *up_id = id_max;
	if (q.has & VOX_QK_UNTIL) {
		up = q.until_us;
		up_id = id_min;
	}
	if ((q.has & VOX_QK_BEFORE) && pos_before(q.before.key, q.before.id, up, up_id)) {
		up = q.before.key;
		up_id = q.before.id;
	}
	snprintf(upper, sizeof(upper), "%" PRId64, up);
	uuid_text(up_id, upper_id);
	snprintf(lower, sizeof(lower), "%" PRId64,
		 (q.has & VOX_QK_SINCE) ? q.since_us : far_past);
	snprintf(limit, sizeof(limit), "%d", q.limit + 1);
	const char *org_p[1] = {org};
	const char *p[7] = {org,
			    upper,
			    upper_id,
			    lower,
			    (q.has & VOX_QK_STATUS) ? q.status : NULL,
			    (q.has & VOX_QK_DIRECTION) ? q.direction : NULL,
			    limit};
	const vox_qcall calls[2] = {{Q_ORG, org_p}, {Q_CALLS, p}};
	if (run(req, qc, org, calls, 2, res))
		reply_list(req, qc, res, q.limit, VOX_QCURSOR_CALLS);
}

void vox_query_hot_leads(vox_request *req, void *ctx)
{
	vox_query_ctx *qc = ctx;
	char org[37], limit[16];
	vox_qreq q;
	PGresult *res[2];
	if (!begin(req, org, &q, vox_query_defs[VOX_Q_HOT_LEADS].keys, VOX_QCURSOR_CALLS))
		return;
	snprintf(limit, sizeof(limit), "%d", q.limit);
	const char *org_p[1] = {org};
	const char *p[2] = {org, limit};
	const vox_qcall calls[2] = {{Q_ORG, org_p}, {Q_HOT_LEADS, p}};
	if (run(req, qc, org, calls, 2, res))
		reply_list(req, qc, res, q.limit, 0);
}

void vox_query_holds(vox_request *req, void *ctx)
{
	vox_query_ctx *qc = ctx;
	char org[37], limit[16];
	vox_qreq q;
	PGresult *res[2];
	if (!begin(req, org, &q, vox_query_defs[VOX_Q_HOLDS].keys, VOX_QCURSOR_CALLS))
		return;
	snprintf(limit, sizeof(limit), "%d", q.limit);
	const char *org_p[1] = {org};
	const char *p[2] = {org, limit};
	const vox_qcall calls[2] = {{Q_ORG, org_p}, {Q_HOLDS, p}};
	if (run(req, qc, org, calls, 2, res))
		reply_list(req, qc, res, q.limit, 0);
}

/* ---- single rows --------------------------------------------------------- */

/* Answer a row: 404 naming the org when it does not exist (res[0]), else
 * naming what (res[1]). */
static void reply_one(vox_request *req, PGresult **res, const char *field,
		      const char *missing)
{
	vox_error err;
	if (PQntuples(res[0]) != 1)
		vox_request_fail(req, vox_request_no_org(&err));
	else
		reply_row(req, res[1], field, missing);
	clear_all(res, 2);
}

void vox_query_call(vox_request *req, void *ctx)
{
	vox_query_ctx *qc = ctx;
	char org[37];
	vox_qreq q;
	PGresult *res[2];
	if (!begin(req, org, &q, vox_query_defs[VOX_Q_CALL].keys, VOX_QCURSOR_CALLS))
		return;
	if (!(q.has & VOX_QK_CALL_ID)) {
		vox_request_failf(req, VOX_E_INVALID, "missing", "call_id",
				  "required");
		return;
	}
	const char *org_p[1] = {org};
	const char *p[2] = {org, q.call_id.s};
	const vox_qcall calls[2] = {{Q_ORG, org_p}, {Q_CALL, p}};
	if (run(req, qc, org, calls, 2, res))
		reply_one(req, res, "call_id", "no such call");
}

void vox_query_contact(vox_request *req, void *ctx)
{
	vox_query_ctx *qc = ctx;
	char org[37];
	vox_qreq q;
	PGresult *res[2];
	if (!begin(req, org, &q, vox_query_defs[VOX_Q_CONTACT].keys, VOX_QCURSOR_CALLS))
		return;
	bool by_id = q.has & VOX_QK_CONTACT_ID, by_phone = q.has & VOX_QK_PHONE;
	if (by_id == by_phone) {
		if (by_id)
			vox_request_failf(req, VOX_E_INVALID, "exclusive",
					  "contact_id", "give contact_id or"
					  " phone, not both");
		else
			vox_request_failf(req, VOX_E_INVALID, "missing",
					  "contact_id", "contact_id or phone is"
					  " required");
		return;
	}
	const char *org_p[1] = {org};
	const char *p[2] = {org, by_id ? q.contact_id.s : q.phone};
	const vox_qcall calls[2] = {
		{Q_ORG, org_p},
		{by_id ? Q_CONTACT_ID : Q_CONTACT_PHONE, p},
	};
	if (run(req, qc, org, calls, 2, res))
		reply_one(req, res, by_id ? "contact_id" : "phone",
			  "no such contact");
}
