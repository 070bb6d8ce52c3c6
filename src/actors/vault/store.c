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
#include "core/credentials_request.h"
#include "io/log.h"
#include "io/pg.h"

#include <msgpack.h>
#include <sodium.h>

#define VAULT_MAX_REQUESTER 200

/* ---- connections --------------------------------------------------------- */

void vox_vault_ctx_init(vox_vault_ctx *vc)
{
	pthread_rwlock_init(&vc->ring_lock, NULL);
	vc->pool = NULL;
}

void vox_vault_ctx_release(vox_vault_ctx *vc)
{
	vox_pgpool_free(vc->pool);
	vc->pool = NULL;
	pthread_rwlock_destroy(&vc->ring_lock);
}

/* A connection from the pool, or NULL with *st saying why (the database
 * is down, or every connection busy). */
static PGconn *conn_get(vox_vault_ctx *vc, vox_status *st)
{
	char err[256];
	PGconn *c = NULL;
	*st = vox_pgpool_get(&c, vc->pool, err, sizeof(err));
	return c;
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

static void reply_db_error(vox_request *req, vox_status st)
{
	vox_error err;
	vox_request_fail(req, vox_request_db_error(&err, st));
}

static void pack_cstr(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* Send sb and wipe it: a reply may carry a secret. */
static void reply_sbuffer(vox_request *req, msgpack_sbuffer *sb)
{
	vox_request_respond(req, sb->data, sb->size);
	if (sb->data)
		sodium_memzero(sb->data, sb->alloc);
	msgpack_sbuffer_destroy(sb);
}

/* ---- the audit trail ----------------------------------------------------- */

/*
 * What one put, get or delete came to, for its audit_logs row. The
 * columns keep the seed schema's meanings: org_id the tenant (NULL when
 * the org asked for does not exist: it is then details.org_id), actor who
 * asked (the Vox-Requester header), action what was asked, resource_type
 * and resource_id the org_credentials row touched or found (NULL when
 * none). details: provider and type as far as they were valid,
 * key_version when a row was sealed or opened, code (200, or the error
 * code answered), reason and error (the error answered: fixed texts,
 * never input), deleted for a delete. Never the secret.
 */
typedef struct audit_entry {
	const char *action;      /* "credentials.get" */
	bool done;               /* carried out: answered 200 */
	vox_error err;           /* refused or failed when err.code is set */
	const char *resource_id; /* the row, or NULL */
	uint32_t key_version;    /* 0: none */
	int deleted;             /* delete: 0 or 1; others -1 */
} audit_entry;

#define AUDIT_ENTRY(act) {.action = (act), .deleted = -1}

static bool refused(const audit_entry *e)
{
	return e->err.code != NULL;
}

/* The code e is answered with. */
static int entry_code(const audit_entry *e)
{
	return e->done ? 200 : vox_status_code(e->err.status);
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

/* One audit_logs row on c, in the caller's transaction if it has one. */
static vox_status audit(PGconn *c, vox_request *req, const char *org,
			const vox_cred_req *q, const audit_entry *e)
{
	char actor[VAULT_MAX_REQUESTER + 1];
	vox_buf details;
	vox_buf_init(&details);
	requester_of(req, actor, sizeof(actor));
	vox_buf_printf(&details, "{\"code\":%d", entry_code(e));
	/* provider and type were checked against fixed lists before they
	 * were kept */
	if (q->has_provider)
		vox_buf_printf(&details, ",\"provider\":\"%s\"", q->provider);
	if (q->has_type || q->complete)
		vox_buf_printf(&details, ",\"type\":\"%s\"", q->type);
	if (e->key_version)
		vox_buf_printf(&details, ",\"key_version\":%" PRIu32, e->key_version);
	if (e->deleted >= 0)
		vox_buf_printf(&details, ",\"deleted\":%s", e->deleted ? "true" : "false");
	if (refused(e)) {
		vox_buf_printf(&details, ",\"reason\":\"%s\",\"error\":", e->err.code);
		vox_buf_json_str(&details, e->err.message, strlen(e->err.message));
	}
	vox_buf_putc(&details, '}');
	const char *params[5] = {org, actor, e->action, e->resource_id, details.data};
	/* the org column only for an org that exists (it is a foreign key);
	 * otherwise the org asked for goes to details */
	vox_status st = sql_cmd(c,
		"INSERT INTO audit_logs (org_id, actor, action, resource_type,"
		" resource_id, details)"
		" SELECT o.id, $2, $3, 'org_credentials', $4, $5::jsonb ||"
		"  CASE WHEN o.id IS NULL THEN jsonb_build_object('org_id', $1::text)"
		"  ELSE '{}'::jsonb END"
		" FROM (SELECT (SELECT id FROM organizations WHERE id = $1::uuid) AS id) o",
		5, params);
	vox_buf_release(&details);
	return st;
}

/* Write e's row on c (NULL: the database is unreachable). A row that
 * cannot be written is logged, one line naming the request (never the
 * secret): outcome is what the request came to, answer what it is
 * answered with - a success whose row is missing is not carried out
 * (the database error instead), a refusal stays itself. */
static vox_status audit_or_log(PGconn *c, vox_request *req, const char *org,
			       const vox_cred_req *q, const audit_entry *e)
{
	vox_status st = c ? audit(c, req, org, q, e) : VOX_E_UNAVAILABLE;
	if (st != VOX_OK) {
		char actor[VAULT_MAX_REQUESTER + 1];
		vox_error dberr;
		vox_request_db_error(&dberr, st);
		int answer = e->done ? vox_status_code(dberr.status) : entry_code(e);
		requester_of(req, actor, sizeof(actor));
		vox_error("msg=\"audit row not written\" action=%s org=%s provider=%s"
			  " type=%s requester=\"%s\" outcome=%d answer=%d status=%s",
			  e->action, org, q->has_provider ? q->provider : "-",
			  q->has_type || q->complete ? q->type : "-", actor, entry_code(e),
			  answer, vox_status_str(st));
	}
	return st;
}

/* A usable connection after a failed step, or NULL. */
static PGconn *still_up(PGconn *c)
{
	return c && PQstatus(c) == CONNECTION_OK ? c : NULL;
}

/* A request refused before its database work: audit it on the
 * endpoint's connection, then answer it with e's code and error. */
static void refuse(vox_vault_ctx *vc, vox_request *req,
		   const char *org, const vox_cred_req *q, const audit_entry *e)
{
	vox_status st;
	PGconn *c = conn_get(vc, &st);
	st = audit_or_log(c, req, org, q, e);
	vox_pgpool_put(vc->pool, c, st);
	vox_request_fail(req, &e->err);
}

/* A request's body may hold a secret in the clear (a put's always,
 * another's by a client's mistake): once it is answered, wipe it, since
 * libnats frees the message without. */
static void wipe_request(vox_request *req)
{
	size_t len;
	const char *data = vox_request_data(req, &len);
	if (data && len)
		sodium_memzero((void *)(uintptr_t)data, len);
}

/*
 * Common start of every endpoint: the org (from the subject) and the
 * decoded request. False when an error was answered. Without a valid org
 * there is nothing to attribute the request to, so that refusal alone is
 * not audited; a refusal of the body is, when action is not NULL. *q is
 * the caller's to release only when true.
 */
static bool begin_request(vox_vault_ctx *vc, vox_request *req,
			  char org[37], vox_cred_req *q, bool need_provider,
			  const char *action)
{
	size_t len;
	const char *data = vox_request_data(req, &len);
	audit_entry e = AUDIT_ENTRY(action);
	if (!vox_request_org(req, org)) {
		vox_request_fail(req, vox_request_bad_org(&e.err));
		return false;
	}
	if (vox_cred_req_parse(q, data, len, &e.err) == VOX_OK) {
		if (!need_provider || q->has_provider)
			return true;
		vox_error_set(&e.err, VOX_E_INVALID, "missing", "provider",
			      "required");
	}
	vox_cred_req_release(q);
	if (action)
		refuse(vc, req, org, q, &e);
	else
		vox_request_fail(req, &e.err);
	return false;
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

/*
 * Seal the config, then in one transaction: the org exists, the row is
 * inserted or replaced, its audit row written. A refusal is audited on
 * its own; a failed audit row rolls the put back (nothing is stored
 * unaudited) and the answer is the database error.
 */
static void put_request(vox_vault_ctx *vc, vox_request *req)
{
	char org[37], id[40] = "", ver[16];
	vox_cred_req q;
	uint8_t *blob = NULL;
	size_t bloblen = 0;
	uint32_t version = 0;
	vox_status st = VOX_OK;
	audit_entry e = AUDIT_ENTRY("credentials.put");

	if (!begin_request(vc, req, org, &q, true, e.action))
		return;
	if (!q.has_config)
		vox_error_set(&e.err, VOX_E_INVALID, "missing", "config", "required");
	else if (q.config_len > VOX_VAULT_MAX_CONFIG)
		vox_error_set(&e.err, VOX_E_TOO_LARGE, "too_large", "config",
			      "larger than the vault accepts");
	if (refused(&e)) {
		refuse(vc, req, org, &q, &e);
		goto out;
	}
	vox_cred_ad ad = {org, q.provider, q.type};
	bloblen = vox_vault_sealed_len(q.config_len);
	blob = vox_malloc(bloblen);
	pthread_rwlock_rdlock(&vc->ring_lock);
	st = vox_vault_seal(blob, bloblen, &version, vc->ring, &ad, q.config,
			    q.config_len);
	pthread_rwlock_unlock(&vc->ring_lock);
	if (st != VOX_OK) {
		vox_error("msg=\"credential cannot be sealed\" org=%s provider=%s"
			  " type=%s status=%s", org, q.provider, q.type,
			  vox_status_str(st));
		if (st == VOX_E_TOO_LARGE)
			vox_error_set(&e.err, st, "too_large", "config",
				      "larger than the vault accepts");
		else
			vox_error_set(&e.err, VOX_E_INTERNAL, "internal", NULL,
				      "credential cannot be encrypted");
		refuse(vc, req, org, &q, &e);
		goto out;
	}
	snprintf(ver, sizeof(ver), "%" PRIu32, version);

	PGconn *c = conn_get(vc, &st);
	if (!c)
		goto failed;
	if ((st = sql_cmd(c, "BEGIN", 0, NULL)) != VOX_OK)
		goto failed;
	int exists = org_exists(c, org, &st);
	if (exists <= 0) {
		rollback(c);
		if (exists < 0)
			goto failed;
		vox_request_no_org(&e.err);
		(void)audit_or_log(c, req, org, &q, &e); /* the 404 stays a 404 */
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
		goto failed;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	e.done = true, e.resource_id = id, e.key_version = version;
	if ((st = audit_or_log(c, req, org, &q, &e)) != VOX_OK) {
		rollback(c);
		goto unlock;
	}
	st = sql_cmd(c, "COMMIT", 0, NULL);
	goto unlock;
failed:
	/* the put did not happen: said in the trail while the database
	 * still takes a row, in the log when it does not */
	vox_request_db_error(&e.err, st);
	(void)audit_or_log(still_up(c), req, org, &q, &e);
unlock:
	vox_pgpool_put(vc->pool, c, st);
	if (st != VOX_OK) {
		reply_db_error(req, st);
		goto out;
	}
	if (refused(&e)) {
		vox_request_fail(req, &e.err);
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
	free(blob);
	vox_cred_req_release(&q);
}

void vox_vault_put(vox_request *req, void *ctx)
{
	put_request(ctx, req);
	wipe_request(req);
}

/* ---- credentials.get ----------------------------------------------------- */

/* The reply {sealed: crypto_box_seal(plain, reply_key)} into *out (vox
 * never sends a credential in the clear). False, *out untouched, when
 * libsodium refuses the key. */
static bool seal_reply(msgpack_sbuffer *out, const vox_cred_req *q, const uint8_t *plain,
		       size_t len)
{
	msgpack_packer pk;
	size_t sl = len + crypto_box_SEALBYTES;
	uint8_t *sealed = vox_malloc(sl);
	if (crypto_box_seal(sealed, plain, len, q->reply_key) != 0) {
		free(sealed);
		return false;
	}
	msgpack_sbuffer_init(out);
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	vox_mp_pack_cstr(&pk, "sealed");
	msgpack_pack_bin(&pk, sl);
	msgpack_pack_bin_body(&pk, sealed, sl);
	free(sealed);
	return true;
}

/*
 * Find the org and the row in one statement, open the row, seal it to
 * reply_key and wipe the plaintext, write the audit row, and only then
 * answer: a read whose audit row cannot be written is answered with the
 * database error, never with the credential.
 */
static void get_request(vox_vault_ctx *vc, vox_request *req)
{
	char org[37], id[40] = "", err[160] = "";
	vox_cred_req q;
	vox_status st = VOX_OK;
	uint8_t *plain = NULL;
	size_t plen = 0;
	bool opened = false, sealed = false;
	msgpack_sbuffer sb;
	audit_entry e = AUDIT_ENTRY("credentials.get");

	if (!begin_request(vc, req, org, &q, true, e.action))
		return;
	if (!q.has_reply_key) {
		vox_error_set(&e.err, VOX_E_INVALID, "missing", "reply_key",
			      "required; credentials are only returned sealed to"
			      " the requester's key");
		refuse(vc, req, org, &q, &e);
		vox_cred_req_release(&q);
		return;
	}
	PGconn *c = conn_get(vc, &st);
	if (!c)
		goto failed;
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
		goto failed;
	if (PQntuples(r) != 1) {
		vox_request_no_org(&e.err);
	} else if (PQgetisnull(r, 0, 0)) {
		vox_error_set(&e.err, VOX_E_NOT_FOUND, "not_found", NULL,
			      "no such credential");
	} else {
		snprintf(id, sizeof(id), "%.*s", PQgetlength(r, 0, 0), PQgetvalue(r, 0, 0));
		char vtxt[16];
		snprintf(vtxt, sizeof(vtxt), "%.*s", PQgetlength(r, 0, 2), PQgetvalue(r, 0, 2));
		int64_t col_version = 0;
		const uint8_t *blob = (const uint8_t *)PQgetvalue(r, 0, 1);
		size_t bloblen = (size_t)PQgetlength(r, 0, 1);
		vox_cred_ad ad = {org, q.provider, q.type};
		e.resource_id = id;
		e.key_version = vox_vault_blob_version(blob, bloblen);
		if (!vox_parse_i64(&col_version, vtxt, 1, INT32_MAX) ||
		    (uint32_t)col_version != e.key_version) {
			snprintf(err, sizeof(err), "key_version column does not match the envelope");
		} else {
			pthread_rwlock_rdlock(&vc->ring_lock);
			opened = vox_vault_open(&plain, &plen, vc->ring, &ad, blob,
						bloblen, err, sizeof(err)) == VOX_OK;
			pthread_rwlock_unlock(&vc->ring_lock);
		}
		if (!opened) {
			vox_error("msg=\"credential cannot be decrypted\" org=%s provider=%s"
				  " type=%s id=%s key_version=%" PRIu32 " error=\"%s\"",
				  org, q.provider, q.type, id, e.key_version, err);
			vox_error_set(&e.err, VOX_E_CRYPTO, "undecryptable", NULL,
				      "credential cannot be decrypted");
		} else {
			sealed = seal_reply(&sb, &q, plain, plen);
			sodium_memzero(plain, plen);
			sodium_free(plain);
			plain = NULL;
			if (sealed)
				e.done = true;
			else
				vox_error_set(&e.err, VOX_E_INVALID, "bad_key",
					      "reply_key",
					      "not a usable X25519 public key");
		}
	}
	PQclear(r);
	st = audit_or_log(c, req, org, &q, &e);
	if (st != VOX_OK && !e.done)
		st = VOX_OK; /* a refusal stays itself; the log has the missing row */
	goto unlock;
failed:
	vox_request_db_error(&e.err, st);
	(void)audit_or_log(still_up(c), req, org, &q, &e);
unlock:
	vox_pgpool_put(vc->pool, c, st);
	if (st != VOX_OK)
		reply_db_error(req, st); /* also when only the audit row failed */
	else if (!e.done)
		vox_request_fail(req, &e.err);
	else
		reply_sbuffer(req, &sb); /* sends, wipes and frees it */
	if (sealed && (st != VOX_OK || !e.done))
		msgpack_sbuffer_destroy(&sb);
	vox_cred_req_release(&q);
}

void vox_vault_get(vox_request *req, void *ctx)
{
	get_request(ctx, req);
	wipe_request(req);
}

/* ---- credentials.list ---------------------------------------------------- */

static void list_request(vox_vault_ctx *vc, vox_request *req)
{
	char org[37];
	vox_cred_req q;
	vox_status st = VOX_OK;
	PGresult *r = NULL;
	int exists = 0;

	if (!begin_request(vc, req, org, &q, false, NULL))
		return;
	PGconn *c = conn_get(vc, &st);
	if (!c)
		goto unlock;
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
	vox_pgpool_put(vc->pool, c, st);
	vox_cred_req_release(&q);
	if (st != VOX_OK) {
		reply_db_error(req, st);
		return;
	}
	if (exists == 0) {
		vox_error err;
		vox_request_fail(req, vox_request_no_org(&err));
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
		if (!vox_parse_i64(&kv, PQgetvalue(r, i, 2), 0, INT32_MAX))
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

void vox_vault_list(vox_request *req, void *ctx)
{
	list_request(ctx, req);
	wipe_request(req);
}

/* ---- credentials.delete -------------------------------------------------- */

/* In one transaction: the org exists, the row is deleted (or there was
 * none), the audit row written; a failed audit row rolls the delete
 * back and the answer is the database error. */
static void delete_request(vox_vault_ctx *vc, vox_request *req)
{
	char org[37], id[40] = "";
	vox_cred_req q;
	vox_status st = VOX_OK;
	bool deleted = false;
	audit_entry e = AUDIT_ENTRY("credentials.delete");

	if (!begin_request(vc, req, org, &q, true, e.action))
		return;
	PGconn *c = conn_get(vc, &st);
	if (!c)
		goto failed;
	if ((st = sql_cmd(c, "BEGIN", 0, NULL)) != VOX_OK)
		goto failed;
	int exists = org_exists(c, org, &st);
	if (exists <= 0) {
		rollback(c);
		if (exists < 0)
			goto failed;
		vox_request_no_org(&e.err);
		(void)audit_or_log(c, req, org, &q, &e); /* the 404 stays a 404 */
		goto unlock;
	}
	const char *params[3] = {org, q.provider, q.type};
	PGresult *r = sql_run(c,
		"DELETE FROM org_credentials WHERE org_id = $1::uuid"
		" AND provider = $2 AND type = $3 RETURNING id::text, key_version",
		3, params, NULL, 0, &st);
	if (!r) {
		rollback(c);
		goto failed;
	}
	deleted = PQntuples(r) == 1;
	if (deleted) {
		int64_t kv = 0;
		snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
		if (vox_parse_i64(&kv, PQgetvalue(r, 0, 1), 0, INT32_MAX))
			e.key_version = (uint32_t)kv;
		e.resource_id = id;
	}
	PQclear(r);
	e.done = true, e.deleted = deleted;
	if ((st = audit_or_log(c, req, org, &q, &e)) != VOX_OK) {
		rollback(c);
		goto unlock;
	}
	st = sql_cmd(c, "COMMIT", 0, NULL);
	goto unlock;
failed:
	vox_request_db_error(&e.err, st);
	(void)audit_or_log(still_up(c), req, org, &q, &e);
unlock:
	vox_pgpool_put(vc->pool, c, st);
	vox_cred_req_release(&q);
	if (st != VOX_OK) {
		reply_db_error(req, st);
		return;
	}
	if (refused(&e)) {
		vox_request_fail(req, &e.err);
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

void vox_vault_delete(vox_request *req, void *ctx)
{
	delete_request(ctx, req);
	wipe_request(req);
}
