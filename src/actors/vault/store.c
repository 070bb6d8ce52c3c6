/*
 * store.c - vox-vault's side of the database and of the envelope: the
 * credentials.put/get/list/delete endpoints, their audit trail, and the
 * key rotation. Requests are read with the bounded reader (core/mp.h),
 * replies written with msgpack-c; every statement is parameterised and
 * every plaintext buffer is wiped before it is freed. Nothing here logs a
 * key or a credential.
 */
#include "actors/vault/vault_actor.h"
#include "core/codec.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/mp.h"
#include "io/log.h"
#include "io/pg.h"

#include <msgpack.h>
#include <sodium.h>

#define VAULT_MAX_REQUESTER 200
/* A request: the largest credential, its keys and its metadata. */
#define VAULT_MAX_REQUEST (VOX_VAULT_MAX_CONFIG + 32 * 1024)
/* metadata, as the JSON object stored */
#define VAULT_MAX_METADATA 4096

/* ---- connections --------------------------------------------------------- */

void vox_vault_ctx_init(vox_vault_ctx *vc)
{
	pthread_rwlock_init(&vc->ring_lock, NULL);
	for (size_t i = 0; i < VOX_VAULT_EP_COUNT; i++) {
		pthread_mutex_init(&vc->conns[i].lock, NULL);
		vc->conns[i].pg = NULL;
		vc->conns[i].down = false;
	}
}

void vox_vault_ctx_release(vox_vault_ctx *vc)
{
	for (size_t i = 0; i < VOX_VAULT_EP_COUNT; i++) {
		pthread_mutex_lock(&vc->conns[i].lock);
		PQfinish(vc->conns[i].pg);
		vc->conns[i].pg = NULL;
		pthread_mutex_unlock(&vc->conns[i].lock);
		pthread_mutex_destroy(&vc->conns[i].lock);
	}
	pthread_rwlock_destroy(&vc->ring_lock);
}

/* With conn->lock held: a working connection, or NULL (database down). */
static PGconn *conn_get(vox_vault_conn *conn, const char *dsn)
{
	char err[256];
	if (conn->pg && PQstatus(conn->pg) == CONNECTION_OK)
		return conn->pg;
	PQfinish(conn->pg);
	conn->pg = NULL;
	if (vox_pg_connect(&conn->pg, dsn, err, sizeof(err)) != VOX_OK) {
		if (!conn->down)
			vox_warn("msg=\"database unavailable\" error=\"%s\"", err);
		conn->down = true;
		return NULL;
	}
	if (conn->down)
		vox_info("msg=\"database available again\"");
	conn->down = false;
	return conn->pg;
}

/* With conn->lock held, after a failed statement: note the outage once. */
static void conn_failed(vox_vault_conn *conn, vox_status st)
{
	if (st == VOX_E_UNAVAILABLE && !conn->down) {
		vox_warn("msg=\"database unavailable\" error=\"connection lost\"");
		conn->down = true;
	}
}

/* End an endpoint's locked section: a failed statement marks the
 * connection for a check before its next use, then the lock goes. */
static void conn_release(vox_vault_conn *conn, vox_status st)
{
	if (st != VOX_OK)
		conn_failed(conn, st);
	pthread_mutex_unlock(&conn->lock);
}

/* ---- SQL helpers --------------------------------------------------------- */

/* Run sql; *st gets the classified status. Text parameters, except those
 * whose lengths[i] > 0 (binary). The result is NULL unless *st is OK. */
static PGresult *sql_run(PGconn *c, const char *sql, int n,
			 const char *const *params, const int *lengths,
			 int result_format, vox_status *st)
{
	int formats[8] = {0};
	for (int i = 0; lengths && i < n && i < 8; i++)
		formats[i] = lengths[i] > 0;
	PGresult *r = PQexecParams(c, sql, n, NULL, params, lengths, formats,
				   result_format);
	*st = vox_pg_status(c, r);
	if (*st != VOX_OK) {
		PQclear(r);
		return NULL;
	}
	return r;
}

static vox_status sql_cmd(PGconn *c, const char *sql, int n,
			  const char *const *params)
{
	vox_status st;
	PQclear(sql_run(c, sql, n, params, NULL, 0, &st));
	return st;
}

static void rollback(PGconn *c)
{
	PQclear(PQexec(c, "ROLLBACK"));
}

/* ---- replies ------------------------------------------------------------- */

static void reply_error(vox_request *req, int code, const char *text)
{
	vox_status st = vox_request_error(req, code, text);
	VOX_UNUSED(st);
}

/* A failed database step: 503 when the database is unreachable or busy,
 * 500 otherwise. */
static void reply_db_error(vox_request *req, vox_status st)
{
	if (vox_status_is_transient(st))
		reply_error(req, 503, "database unavailable");
	else
		reply_error(req, 500, "database error");
}

static void pack_cstr(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* Send sb and wipe it: a reply may carry a secret. */
static void reply_sbuffer(vox_request *req, msgpack_sbuffer *sb)
{
	vox_status st = vox_request_respond(req, sb->data, sb->size);
	VOX_UNUSED(st);
	if (sb->data)
		sodium_memzero(sb->data, sb->alloc);
	msgpack_sbuffer_destroy(sb);
}

/* ---- requests ------------------------------------------------------------ */

/* A decoded request: views into the message, valid during the handler. */
typedef struct cred_req {
	char provider[32];
	char type[16];
	bool has_provider, has_type;
	const uint8_t *config;
	uint32_t config_len;
	bool has_config;
	const uint8_t *reply_key;
	bool has_reply_key;
	vox_buf metadata; /* JSON object, empty when absent */
} cred_req;

/* Why a request was refused: code and text, or code 0. */
typedef struct req_fail {
	int code;
	const char *text;
} req_fail;

static bool key_is(const char *k, uint32_t kl, const char *name)
{
	return kl == strlen(name) && memcmp(k, name, kl) == 0;
}

/* Read a string or binary value. */
static bool read_bytes(vox_mp *r, const uint8_t **p, uint32_t *n)
{
	vox_mp_type t = vox_mp_peek(r);
	if (t == VOX_MP_STR) {
		const char *s;
		if (vox_mp_str(r, &s, n) != VOX_MP_OK)
			return false;
		*p = (const uint8_t *)s;
		return true;
	}
	if (t == VOX_MP_BIN)
		return vox_mp_bin(r, p, n) == VOX_MP_OK;
	return false;
}

/* UTF-8 text without a NUL byte (what a jsonb string can hold as is). */
static bool text_ok(const char *s, uint32_t n)
{
	for (uint32_t i = 0; i < n;) {
		if (s[i] == '\0')
			return false;
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = vox_utf8_len((const unsigned char *)s + i, n - i);
		if (k == 0)
			return false;
		i += (uint32_t)k;
	}
	return true;
}

/* metadata: a map of strings to strings, written as a JSON object; text
 * that JSON cannot hold byte for byte is refused, never altered. */
static bool read_metadata(vox_mp *r, vox_buf *out, req_fail *fail)
{
	uint32_t n;
	*fail = (req_fail){400, "metadata: must be a map of strings"};
	if (vox_mp_peek(r) == VOX_MP_NIL)
		return vox_mp_nil(r) == VOX_MP_OK;
	if (vox_mp_map(r, &n) != VOX_MP_OK)
		return false;
	vox_buf_putc(out, '{');
	for (uint32_t i = 0; i < n; i++) {
		const char *k, *v;
		uint32_t kl, vl;
		if (vox_mp_str(r, &k, &kl) != VOX_MP_OK ||
		    vox_mp_str(r, &v, &vl) != VOX_MP_OK)
			return false;
		if (!text_ok(k, kl) || !text_ok(v, vl)) {
			*fail = (req_fail){400, "metadata: must be UTF-8 text without NUL bytes"};
			return false;
		}
		if (i)
			vox_buf_putc(out, ',');
		vox_buf_json_str(out, k, kl);
		vox_buf_putc(out, ':');
		vox_buf_json_str(out, v, vl);
		if (out->len > VAULT_MAX_METADATA) {
			*fail = (req_fail){413, "metadata: larger than 4096 bytes"};
			return false;
		}
	}
	vox_buf_putc(out, '}');
	return true;
}

/*
 * Decode a request body: a msgpack map (an empty body counts as {}), the
 * keys this vault knows checked, others skipped (an org_id key included:
 * the org is the subject's). On failure *fail says what to answer.
 */
static bool parse_request(const void *data, size_t len, cred_req *q,
			  req_fail *fail)
{
	vox_mp r;
	uint32_t n = 0;
	memset(q, 0, sizeof(*q));
	vox_buf_init(&q->metadata);
	snprintf(q->type, sizeof(q->type), "default");
	*fail = (req_fail){400, "request must be a msgpack map"};
	if (len == 0)
		goto done;
	vox_mp_init(&r, data, len);
	if (vox_mp_peek(&r) != VOX_MP_MAP || vox_mp_map(&r, &n) != VOX_MP_OK)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		const char *k;
		uint32_t kl;
		if (vox_mp_peek(&r) != VOX_MP_STR || vox_mp_str(&r, &k, &kl) != VOX_MP_OK) {
			*fail = (req_fail){400, "request keys must be strings"};
			return false;
		}
		if (key_is(k, kl, "provider") || key_is(k, kl, "type")) {
			bool is_provider = k[0] == 'p';
			const char *s;
			uint32_t sl;
			if (vox_mp_peek(&r) != VOX_MP_STR || vox_mp_str(&r, &s, &sl) != VOX_MP_OK) {
				*fail = is_provider
					? (req_fail){400, "provider: must be a string"}
					: (req_fail){400, "type: must be a string"};
				return false;
			}
			if (is_provider) {
				if (!vox_vault_provider_ok(s, sl) || sl >= sizeof(q->provider)) {
					*fail = (req_fail){400, "provider: unknown provider"};
					return false;
				}
				memcpy(q->provider, s, sl);
				q->provider[sl] = '\0';
				q->has_provider = true;
			} else {
				if (!vox_vault_type_ok(s, sl) || sl >= sizeof(q->type)) {
					*fail = (req_fail){400, "type: must be default, inbound or outbound"};
					return false;
				}
				memcpy(q->type, s, sl);
				q->type[sl] = '\0';
				q->has_type = true;
			}
		} else if (key_is(k, kl, "config")) {
			if (!read_bytes(&r, &q->config, &q->config_len)) {
				*fail = (req_fail){400, "config: must be bin or str"};
				return false;
			}
			q->has_config = true;
		} else if (key_is(k, kl, "reply_key")) {
			const uint8_t *b;
			uint32_t bl;
			if (vox_mp_peek(&r) != VOX_MP_BIN || vox_mp_bin(&r, &b, &bl) != VOX_MP_OK ||
			    bl != crypto_box_PUBLICKEYBYTES) {
				*fail = (req_fail){400, "reply_key: must be a 32-byte bin"};
				return false;
			}
			q->reply_key = b;
			q->has_reply_key = true;
		} else if (key_is(k, kl, "metadata")) {
			vox_buf_reset(&q->metadata);
			if (!read_metadata(&r, &q->metadata, fail))
				return false;
		} else if (vox_mp_skip(&r) != VOX_MP_OK) {
			return false;
		}
	}
	if (vox_mp_left(&r) != 0)
		return false; /* trailing bytes: not one map */
done:
	*fail = (req_fail){0, NULL};
	return true;
}

/* Common start of every endpoint: the org and the decoded request. False
 * when an error was answered. */
static bool begin_request(vox_request *req, char org[37], cred_req *q,
			  bool need_provider)
{
	size_t len;
	const char *data = vox_request_data(req, &len);
	req_fail fail;
	if (!vox_request_org(req, org)) {
		reply_error(req, 400, "org_id: the subject's last token must be a UUID");
		return false;
	}
	if (len > VAULT_MAX_REQUEST) {
		char text[96];
		snprintf(text, sizeof(text), "request of %zu bytes is over the %d byte limit",
			 len, VAULT_MAX_REQUEST);
		reply_error(req, 413, text);
		return false;
	}
	if (!parse_request(data, len, q, &fail)) {
		vox_buf_release(&q->metadata);
		reply_error(req, fail.code, fail.text);
		return false;
	}
	if (need_provider && !q->has_provider) {
		vox_buf_release(&q->metadata);
		reply_error(req, 400, "provider: required");
		return false;
	}
	return true;
}

/* The Vox-Requester header when it is short printable text, else
 * "unknown" (it goes to the audit log, never trusted for more). */
static void requester_of(vox_request *req, char *out, size_t outlen)
{
	const char *v = NULL;
	natsMsg *m = vox_request_msg(req);
	snprintf(out, outlen, "unknown");
	if (!m || natsMsgHeader_Get(m, "Vox-Requester", &v) != NATS_OK || !v)
		return;
	size_t n = strlen(v);
	if (n == 0 || n > VAULT_MAX_REQUESTER || n >= outlen)
		return;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
			return;
	memcpy(out, v, n);
	out[n] = '\0';
}

/* One audit_logs row: who did what to which credential, never the
 * secret. */
static vox_status audit(PGconn *c, vox_request *req, const char *org,
			const char *action, const char *resource_id,
			const cred_req *q, uint32_t key_version)
{
	char actor[VAULT_MAX_REQUESTER + 1];
	char details[160];
	requester_of(req, actor, sizeof(actor));
	/* provider and type were checked against fixed lists: no escaping */
	if (key_version)
		snprintf(details, sizeof(details),
			 "{\"provider\":\"%s\",\"type\":\"%s\",\"key_version\":%" PRIu32 "}",
			 q->provider, q->type, key_version);
	else
		snprintf(details, sizeof(details), "{\"provider\":\"%s\",\"type\":\"%s\"}",
			 q->provider, q->type);
	const char *params[5] = {org, actor, action, resource_id, details};
	return sql_cmd(c,
		       "INSERT INTO audit_logs (org_id, actor, action, resource_type,"
		       " resource_id, details) VALUES ($1::uuid, $2, $3,"
		       " 'org_credentials', $4, $5::jsonb)",
		       5, params);
}

/* 1 when the org exists, 0 when not, -1 on a database error (*st). */
static int org_exists(PGconn *c, const char *org, vox_status *st)
{
	const char *params[1] = {org};
	PGresult *r = sql_run(c, "SELECT 1 FROM organizations WHERE id = $1::uuid",
			      1, params, NULL, 0, st);
	if (!r)
		return -1;
	int found = PQntuples(r) == 1;
	PQclear(r);
	return found;
}

/* ---- credentials.put ----------------------------------------------------- */

void vox_vault_put(vox_request *req, void *ctx)
{
	vox_vault_ctx *vc = ctx;
	vox_vault_conn *conn = &vc->conns[VOX_VAULT_EP_PUT];
	char org[37], id[40] = "", ver[16];
	cred_req q;
	uint8_t *blob = NULL;
	size_t bloblen = 0;
	uint32_t version = 0;
	vox_status st = VOX_OK;
	int code = 0;
	const char *text = NULL;

	if (!begin_request(req, org, &q, true))
		return;
	if (!q.has_config) {
		code = 400, text = "config: required";
		goto out;
	}
	if (q.config_len > VOX_VAULT_MAX_CONFIG) {
		code = 413, text = "config: larger than the vault accepts";
		goto out;
	}
	vox_cred_ad ad = {org, q.provider, q.type};
	bloblen = vox_vault_sealed_len(q.config_len);
	blob = vox_malloc(bloblen);
	pthread_rwlock_rdlock(&vc->ring_lock);
	st = vox_vault_seal(vc->ring, &ad, q.config, q.config_len, blob, bloblen,
			    &version);
	pthread_rwlock_unlock(&vc->ring_lock);
	if (st != VOX_OK) {
		vox_error("msg=\"credential cannot be sealed\" org=%s provider=%s"
			  " type=%s status=%s", org, q.provider, q.type,
			  vox_status_str(st));
		code = st == VOX_E_TOO_LARGE ? 413 : 500;
		text = st == VOX_E_TOO_LARGE ? "config: larger than the vault accepts"
					     : "credential cannot be encrypted";
		goto out;
	}
	snprintf(ver, sizeof(ver), "%" PRIu32, version);

	pthread_mutex_lock(&conn->lock);
	PGconn *c = conn_get(conn, vc->dsn);
	if (!c) {
		st = VOX_E_UNAVAILABLE;
		goto unlock;
	}
	if ((st = sql_cmd(c, "BEGIN", 0, NULL)) != VOX_OK)
		goto unlock;
	int exists = org_exists(c, org, &st);
	if (exists <= 0) {
		rollback(c);
		if (exists == 0)
			code = 404, text = "org_id: no such organization";
		goto unlock;
	}
	const char *params[6] = {org, q.provider, q.type, (const char *)blob, ver,
				 q.metadata.len ? q.metadata.data : NULL};
	const int lengths[6] = {0, 0, 0, (int)bloblen, 0, 0};
	PGresult *r = sql_run(c,
		"INSERT INTO org_credentials (org_id, provider, type,"
		" encrypted_config, key_version, metadata)"
		" VALUES ($1::uuid, $2, $3, $4::bytea, $5::int,"
		"  COALESCE($6::jsonb, '{}'::jsonb))"
		" ON CONFLICT (org_id, provider, type) DO UPDATE SET"
		"  encrypted_config = EXCLUDED.encrypted_config,"
		"  key_version = EXCLUDED.key_version,"
		"  metadata = COALESCE($6::jsonb, org_credentials.metadata),"
		"  is_active = true, updated_at = now()"
		" RETURNING id::text",
		6, params, lengths, 0, &st);
	if (!r) {
		rollback(c);
		goto unlock;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if ((st = audit(c, req, org, "credentials.put", id, &q, version)) != VOX_OK) {
		rollback(c);
		goto unlock;
	}
	st = sql_cmd(c, "COMMIT", 0, NULL);
unlock:
	conn_release(conn, st);
	if (code)
		goto out;
	if (st != VOX_OK) {
		reply_db_error(req, st);
		goto out;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	vox_mp_pack_cstr(&pk, "id");
	pack_cstr(&pk, id, strlen(id));
	vox_mp_pack_cstr(&pk, "key_version");
	msgpack_pack_uint32(&pk, version);
	reply_sbuffer(req, &sb);
	vox_info("msg=\"credential stored\" org=%s provider=%s type=%s key_version=%"
		 PRIu32, org, q.provider, q.type, version);
out:
	if (code)
		reply_error(req, code, text);
	free(blob);
	vox_buf_release(&q.metadata);
}

/* ---- credentials.get ----------------------------------------------------- */

/* Reply with the credential sealed to the requester's reply_key: vox
 * never sends a credential in the clear. The reply holds only the sealed
 * box. */
static void reply_sealed(vox_request *req, const cred_req *q, const uint8_t *plain,
			 size_t len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t sl = len + crypto_box_SEALBYTES;
	uint8_t *sealed = vox_malloc(sl);
	if (crypto_box_seal(sealed, plain, len, q->reply_key) != 0) {
		free(sealed);
		reply_error(req, 400, "reply_key: not a usable X25519 public key");
		return;
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	vox_mp_pack_cstr(&pk, "sealed");
	msgpack_pack_bin(&pk, sl);
	msgpack_pack_bin_body(&pk, sealed, sl);
	free(sealed);
	reply_sbuffer(req, &sb);
}

void vox_vault_get(vox_request *req, void *ctx)
{
	vox_vault_ctx *vc = ctx;
	vox_vault_conn *conn = &vc->conns[VOX_VAULT_EP_GET];
	char org[37], id[40] = "", err[160] = "";
	cred_req q;
	vox_status st = VOX_OK;
	int code = 0;
	const char *text = NULL;
	uint8_t *plain = NULL;
	size_t plen = 0;
	uint32_t version = 0;
	bool opened = false;

	if (!begin_request(req, org, &q, true))
		return;
	if (!q.has_reply_key) {
		vox_buf_release(&q.metadata);
		reply_error(req, 400, "reply_key: required; credentials are only"
				      " returned sealed to the requester's key");
		return;
	}
	pthread_mutex_lock(&conn->lock);
	PGconn *c = conn_get(conn, vc->dsn);
	if (!c) {
		st = VOX_E_UNAVAILABLE;
		goto unlock;
	}
	/* one statement: the org and the row, binary so the envelope comes
	 * back as raw bytes */
	const char *params[3] = {org, q.provider, q.type};
	PGresult *r = sql_run(c,
		"SELECT c.id::text, c.encrypted_config, c.key_version::text"
		" FROM organizations o LEFT JOIN org_credentials c"
		"  ON c.org_id = o.id AND c.provider = $2 AND c.type = $3"
		" WHERE o.id = $1::uuid",
		3, params, NULL, 1, &st);
	if (!r)
		goto unlock;
	if (PQntuples(r) != 1) {
		code = 404, text = "org_id: no such organization";
	} else if (PQgetisnull(r, 0, 0)) {
		code = 404, text = "no such credential";
	} else {
		snprintf(id, sizeof(id), "%.*s", PQgetlength(r, 0, 0), PQgetvalue(r, 0, 0));
		char vtxt[16];
		snprintf(vtxt, sizeof(vtxt), "%.*s", PQgetlength(r, 0, 2), PQgetvalue(r, 0, 2));
		int64_t col_version = 0;
		const uint8_t *blob = (const uint8_t *)PQgetvalue(r, 0, 1);
		size_t bloblen = (size_t)PQgetlength(r, 0, 1);
		vox_cred_ad ad = {org, q.provider, q.type};
		version = vox_vault_blob_version(blob, bloblen);
		if (!vox_parse_i64(vtxt, 1, INT32_MAX, &col_version) ||
		    (uint32_t)col_version != version) {
			snprintf(err, sizeof(err), "key_version column does not match the envelope");
		} else {
			pthread_rwlock_rdlock(&vc->ring_lock);
			opened = vox_vault_open(vc->ring, &ad, blob, bloblen, &plain,
						&plen, err, sizeof(err)) == VOX_OK;
			pthread_rwlock_unlock(&vc->ring_lock);
		}
		if (!opened) {
			vox_error("msg=\"credential cannot be decrypted\" org=%s provider=%s"
				  " type=%s id=%s key_version=%" PRIu32 " error=\"%s\"",
				  org, q.provider, q.type, id, version, err);
			code = 500, text = "credential cannot be decrypted";
		}
	}
	PQclear(r);
	if (opened)
		st = audit(c, req, org, "credentials.get", id, &q, version);
unlock:
	conn_release(conn, st);
	if (code)
		reply_error(req, code, text);
	else if (st != VOX_OK)
		reply_db_error(req, st); /* also when only the audit failed */
	else
		reply_sealed(req, &q, plain, plen);
	if (plain) {
		sodium_memzero(plain, plen);
		sodium_free(plain);
	}
	vox_buf_release(&q.metadata);
}

/* ---- credentials.list ---------------------------------------------------- */

void vox_vault_list(vox_request *req, void *ctx)
{
	vox_vault_ctx *vc = ctx;
	vox_vault_conn *conn = &vc->conns[VOX_VAULT_EP_LIST];
	char org[37];
	cred_req q;
	vox_status st = VOX_OK;
	PGresult *r = NULL;
	int exists = 0;

	if (!begin_request(req, org, &q, false))
		return;
	pthread_mutex_lock(&conn->lock);
	PGconn *c = conn_get(conn, vc->dsn);
	if (!c) {
		st = VOX_E_UNAVAILABLE;
		goto unlock;
	}
	exists = org_exists(c, org, &st);
	if (exists <= 0)
		goto unlock;
	const char *params[1] = {org};
	r = sql_run(c,
		"SELECT provider, type, key_version, is_active,"
		" to_char(updated_at AT TIME ZONE 'UTC',"
		"  'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
		" FROM org_credentials WHERE org_id = $1::uuid ORDER BY provider, type",
		1, params, NULL, 0, &st);
unlock:
	conn_release(conn, st);
	vox_buf_release(&q.metadata);
	if (st != VOX_OK) {
		reply_db_error(req, st);
		return;
	}
	if (exists == 0) {
		reply_error(req, 404, "org_id: no such organization");
		return;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	vox_mp_pack_cstr(&pk, "items");
	int n = PQntuples(r);
	msgpack_pack_array(&pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		int64_t kv = 0;
		if (!vox_parse_i64(PQgetvalue(r, i, 2), 0, INT32_MAX, &kv))
			kv = 0;
		msgpack_pack_map(&pk, 5);
		vox_mp_pack_cstr(&pk, "provider");
		pack_cstr(&pk, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
		vox_mp_pack_cstr(&pk, "type");
		pack_cstr(&pk, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
		vox_mp_pack_cstr(&pk, "key_version");
		msgpack_pack_int64(&pk, kv);
		vox_mp_pack_cstr(&pk, "is_active");
		if (PQgetvalue(r, i, 3)[0] == 't')
			msgpack_pack_true(&pk);
		else
			msgpack_pack_false(&pk);
		vox_mp_pack_cstr(&pk, "updated_at");
		pack_cstr(&pk, PQgetvalue(r, i, 4), (size_t)PQgetlength(r, i, 4));
	}
	PQclear(r);
	reply_sbuffer(req, &sb);
}

/* ---- credentials.delete -------------------------------------------------- */

void vox_vault_delete(vox_request *req, void *ctx)
{
	vox_vault_ctx *vc = ctx;
	vox_vault_conn *conn = &vc->conns[VOX_VAULT_EP_DELETE];
	char org[37], id[40] = "";
	cred_req q;
	vox_status st = VOX_OK;
	int exists = 0;
	bool deleted = false;
	uint32_t version = 0;

	if (!begin_request(req, org, &q, true))
		return;
	pthread_mutex_lock(&conn->lock);
	PGconn *c = conn_get(conn, vc->dsn);
	if (!c) {
		st = VOX_E_UNAVAILABLE;
		goto unlock;
	}
	if ((st = sql_cmd(c, "BEGIN", 0, NULL)) != VOX_OK)
		goto unlock;
	exists = org_exists(c, org, &st);
	if (exists <= 0) {
		rollback(c);
		goto unlock;
	}
	const char *params[3] = {org, q.provider, q.type};
	PGresult *r = sql_run(c,
		"DELETE FROM org_credentials WHERE org_id = $1::uuid"
		" AND provider = $2 AND type = $3 RETURNING id::text, key_version",
		3, params, NULL, 0, &st);
	if (!r) {
		rollback(c);
		goto unlock;
	}
	deleted = PQntuples(r) == 1;
	if (deleted) {
		int64_t kv = 0;
		snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
		if (vox_parse_i64(PQgetvalue(r, 0, 1), 0, INT32_MAX, &kv))
			version = (uint32_t)kv;
	}
	PQclear(r);
	if (deleted && (st = audit(c, req, org, "credentials.delete", id, &q,
				   version)) != VOX_OK) {
		rollback(c);
		goto unlock;
	}
	st = sql_cmd(c, "COMMIT", 0, NULL);
unlock:
	conn_release(conn, st);
	vox_buf_release(&q.metadata);
	if (st != VOX_OK) {
		reply_db_error(req, st);
		return;
	}
	if (exists == 0) {
		reply_error(req, 404, "org_id: no such organization");
		return;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	vox_mp_pack_cstr(&pk, "deleted");
	if (deleted)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	reply_sbuffer(req, &sb);
	if (deleted)
		vox_info("msg=\"credential deleted\" org=%s provider=%s type=%s", org,
			 q.provider, q.type);
}

/* ---- rotation ------------------------------------------------------------ */

/* Re-encrypt one row (columns: id, org_id, provider, type, envelope; binary
 * result format, text columns cast to text). */
static vox_status rotate_row(PGconn *c, const vox_keyring *kr, PGresult *r,
			     int i, char *err, size_t errlen)
{
	char id[40], org[40], provider[32], type[16], ver[16];
	uint8_t *plain = NULL, *blob = NULL;
	size_t plen = 0;
	uint32_t version = 0;
	vox_status st;
	snprintf(id, sizeof(id), "%.*s", PQgetlength(r, i, 0), PQgetvalue(r, i, 0));
	snprintf(org, sizeof(org), "%.*s", PQgetlength(r, i, 1), PQgetvalue(r, i, 1));
	snprintf(provider, sizeof(provider), "%.*s", PQgetlength(r, i, 2),
		 PQgetvalue(r, i, 2));
	snprintf(type, sizeof(type), "%.*s", PQgetlength(r, i, 3), PQgetvalue(r, i, 3));
	vox_cred_ad ad = {org, provider, type};
	st = vox_vault_open(kr, &ad, (const uint8_t *)PQgetvalue(r, i, 4),
			    (size_t)PQgetlength(r, i, 4), &plain, &plen, err, errlen);
	if (st != VOX_OK)
		goto out;
	size_t bloblen = vox_vault_sealed_len(plen);
	blob = vox_malloc(bloblen);
	st = vox_vault_seal(kr, &ad, plain, plen, blob, bloblen, &version);
	if (st != VOX_OK) {
		snprintf(err, errlen, "cannot seal: %s", vox_status_str(st));
		goto out;
	}
	snprintf(ver, sizeof(ver), "%" PRIu32, version);
	const char *params[3] = {id, (const char *)blob, ver};
	const int lengths[3] = {0, (int)bloblen, 0};
	/* updated_at is when the secret was put: a rotation keeps it */
	PQclear(sql_run(c,
			"UPDATE org_credentials SET encrypted_config = $2::bytea,"
			" key_version = $3::int WHERE id = $1::uuid",
			3, params, lengths, 0, &st));
	if (st != VOX_OK)
		snprintf(err, errlen, "update failed: %s", PQerrorMessage(c));
out:
	if (plain) {
		sodium_memzero(plain, plen);
		sodium_free(plain);
	}
	free(blob);
	return st;
}

vox_status vox_vault_rotate(PGconn *c, const vox_keyring *kr, int batch,
			    int *rotated, char *err, size_t errlen)
{
	char active[16], limit[16];
	vox_pg_array bad; /* rows that cannot be opened: skipped */
	vox_status st = VOX_OK;
	char first_bad[200] = "";
	int done = 0;
	vox_pg_array_init(&bad);
	snprintf(active, sizeof(active), "%" PRIu32, vox_keyring_active(kr));
	snprintf(limit, sizeof(limit), "%d", batch > 0 ? batch : 100);
	for (;;) {
		if ((st = sql_cmd(c, "BEGIN", 0, NULL)) != VOX_OK) {
			snprintf(err, errlen, "begin: %s", PQerrorMessage(c));
			break;
		}
		const char *params[3] = {active, limit, vox_pg_array_text(&bad)};
		PGresult *r = sql_run(c,
			"SELECT id::text, org_id::text, provider, type, encrypted_config"
			" FROM org_credentials WHERE key_version <> $1::int"
			" AND NOT (id = ANY($3::uuid[]))"
			" ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED",
			3, params, NULL, 1, &st);
		if (!r) {
			snprintf(err, errlen, "select: %s", PQerrorMessage(c));
			rollback(c);
			break;
		}
		int n = PQntuples(r), ok = 0;
		for (int i = 0; i < n && st == VOX_OK; i++) {
			char rerr[160] = "";
			vox_status rs = rotate_row(c, kr, r, i, rerr, sizeof(rerr));
			if (rs == VOX_OK) {
				ok++;
			} else if (rs == VOX_E_CRYPTO) {
				vox_pg_array_str(&bad, PQgetvalue(r, i, 0),
						 (size_t)PQgetlength(r, i, 0));
				if (!first_bad[0])
					snprintf(first_bad, sizeof(first_bad),
						 "row %.*s cannot be decrypted: %s",
						 PQgetlength(r, i, 0), PQgetvalue(r, i, 0), rerr);
			} else {
				st = rs;
				snprintf(err, errlen, "%s", rerr);
			}
		}
		PQclear(r);
		if (st != VOX_OK) {
			rollback(c);
			break;
		}
		if ((st = sql_cmd(c, "COMMIT", 0, NULL)) != VOX_OK) {
			snprintf(err, errlen, "commit: %s", PQerrorMessage(c));
			break;
		}
		done += ok;
		if (n == 0)
			break;
	}
	vox_pg_array_release(&bad);
	*rotated = done;
	if (st == VOX_OK && first_bad[0]) {
		snprintf(err, errlen, "%s", first_bad);
		st = VOX_E_CRYPTO;
	}
	return st;
}
