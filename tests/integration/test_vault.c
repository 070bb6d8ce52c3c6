/*
 * Integration: the vox-vault actor against real servers. Every test has its
 * own nats-server and its own migrated database, spawns vox-vault with a key
 * ring in VOX_VAULT_KEYS (or a key file) and talks to it by request-reply:
 * the round trip, the sealed-box reply (and the refusal of any other form),
 * rows that must not open (copied to another org, a flipped byte), the
 * refusals, the audit trail of every outcome without secrets, the key
 * ring's reload on SIGHUP, a process that cannot dump core, and a key
 * rotation (vox_vault_rotate, linked in) while readers keep reading.
 */
#define _DEFAULT_SOURCE /* setgroups(), to run vox-vault as another user */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>
#include <sodium.h>

#include "actors/vault/vault_actor.h"
#include "io/vault_rotate.h"
#include "core/json.h"
#include "harness.h"
#include "io/migrate.h"

#define ORG_A "a0000000-0000-4000-8000-00000000000a"
#define ORG_B "b0000000-0000-4000-8000-00000000000b"
#define ORG_C "c0000000-0000-4000-8000-00000000000c"
#define ORG_X "e0000000-0000-4000-8000-0000000000ee" /* never inserted */
#define SECRET "sk_live_7f3e9a2b-TOP-SECRET-d41d8cd98f00"

/* ---- fixture ------------------------------------------------------------ */

typedef struct fixture {
	th_nats nats;
	char dsn[512];
	char env_url[128];
	char env_dsn[600];
	char key1[64], key2[64]; /* base64 master keys */
	char ring1[200];         /* "1 <key1>" */
	char ring12[300];        /* "1 <key1>\n2 <key2>\nactive 2" */
	pid_t actor;
	char log[600];
	int nlogs;
	char logs[8][600]; /* every log this test wrote, for the secret grep */
	natsConnection *nc;
	PGconn *db;
	int run;
} fixture;

static int run_counter;

static int setup(void **state)
{
	fixture *f = vox_calloc(1, sizeof(*f));
	uint8_t k[32];
	assert_true(sodium_init() >= 0);
	f->run = run_counter++;
	th_nats_start(&f->nats);
	th_pg_migrated_db("vault", f->dsn, sizeof(f->dsn));
	f->db = th_pg_connect(f->dsn);
	snprintf(f->env_url, sizeof(f->env_url), "VOX_NATS_URL=%s", f->nats.url);
	snprintf(f->env_dsn, sizeof(f->env_dsn), "VOX_PG_DSN=%s", f->dsn);
	randombytes_buf(k, sizeof(k));
	sodium_bin2base64(f->key1, sizeof(f->key1), k, sizeof(k),
			  sodium_base64_VARIANT_ORIGINAL);
	randombytes_buf(k, sizeof(k));
	sodium_bin2base64(f->key2, sizeof(f->key2), k, sizeof(k),
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(f->ring1, sizeof(f->ring1), "1 %s\n", f->key1);
	snprintf(f->ring12, sizeof(f->ring12), "# rotation\n1 %s\n2 %s\nactive 2\n",
		 f->key1, f->key2);
	th_secret(f->key1);
	th_secret(f->key2);
	th_secret(SECRET);
	th_nats_connect(f->nats.url, &f->nc);
	*state = f;
	return 0;
}

/* Stops everything, also after a failed assertion. */
static int teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	if (f->actor > 0)
		th_stop(f->actor, SIGKILL, 5000);
	natsConnection_Destroy(f->nc);
	th_nats_stop(&f->nats);
	PQfinish(f->db);
	free(f);
	return 0;
}

/* memmem without _GNU_SOURCE. */
static const void *mem_find(const void *hay, size_t n, const void *needle, size_t m)
{
	const char *h = hay;
	if (m == 0 || n < m)
		return NULL;
	for (size_t i = 0; i + m <= n; i++)
		if (h[i] == *(const char *)needle && memcmp(h + i, needle, m) == 0)
			return h + i;
	return NULL;
}

/* The whole file contains needle (binary-safe). */
static bool file_contains(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return false;
	vox_buf b;
	vox_buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		vox_buf_append(&b, chunk, n);
	fclose(fp);
	bool found = b.len && mem_find(b.data, b.len, needle, strlen(needle)) != NULL;
	vox_buf_release(&b);
	return found;
}

/* Spawn vox-vault with the given extra "K=V" settings (NULL-ended list
 * of up to 3); returns its pid without waiting. */
static pid_t spawn_vault(fixture *f, const char *const *extra)
{
	char *env[8];
	static char xs[3][600];
	int k = 0;
	env[k++] = f->env_url;
	env[k++] = f->env_dsn;
	for (int i = 0; extra && extra[i] && i < 3; i++) {
		snprintf(xs[i], sizeof(xs[i]), "%s", extra[i]);
		env[k++] = xs[i];
	}
	env[k] = NULL;
	snprintf(f->log, sizeof(f->log), "%s/vault-%ld-%d-%d.log", th_env("VOX_TEST_TMP"),
		 (long)getpid(), f->run, f->nlogs);
	if (f->nlogs < 8)
		snprintf(f->logs[f->nlogs++], sizeof(f->logs[0]), "%s", f->log);
	return th_spawn("vox-vault", env, f->log);
}

/* Start vox-vault with extra settings and wait until it serves. */
static void start_vault_env(fixture *f, const char *const *extra)
{
	f->actor = spawn_vault(f, extra);
	for (int t = 0; t < 200; t++) {
		if (th_count_in_log(f->log, "msg=\"started\"") >= 1)
			return;
		int ws;
		if (waitpid(f->actor, &ws, WNOHANG) == f->actor) {
			f->actor = 0;
			fail_msg("vox-vault exited at start (see %s)", f->log);
		}
		th_sleep_ms(100);
	}
	fail_msg("vox-vault did not start (see %s)", f->log);
}

/* Start vox-vault with ring as VOX_VAULT_KEYS and wait until it serves. */
static void start_vault(fixture *f, const char *ring)
{
	char keys[400];
	snprintf(keys, sizeof(keys), "VOX_VAULT_KEYS=%s", ring);
	const char *extra[] = {keys, NULL};
	start_vault_env(f, extra);
}

static void stop_vault(fixture *f)
{
	int ws = th_stop(f->actor, SIGTERM, 10000);
	f->actor = 0;
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
}

static void add_org(fixture *f, const char *id)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO organizations (id, name, email) VALUES ('%s',"
		 " 'org %.8s', 'vault+%.8s@example.com')", id, id, id);
	th_pg_ok(f->db, sql);
}

static long long sql_int(fixture *f, const char *fmt, ...) VOX_PRINTF(2, 3);
static long long sql_int(fixture *f, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return th_pg_int(f->db, sql);
}

static void sql_ok(fixture *f, const char *fmt, ...) VOX_PRINTF(2, 3);
static void sql_ok(fixture *f, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	th_pg_ok(f->db, sql);
}

/* ---- requests ----------------------------------------------------------- */

/* Request credentials.<verb>.<token> with a raw body; requester (may be
 * NULL) goes in the Vox-Requester header. */
static natsStatus request_raw(natsConnection *nc, const char *verb, const char *token,
			      const void *data, size_t len, const char *requester,
			      th_reply *out)
{
	char subject[256];
	snprintf(subject, sizeof(subject), "credentials.%s.%s", verb, token);
	return th_request_raw(nc, subject, data, len, "Vox-Requester", requester,
			      out);
}

static void request(fixture *f, const char *verb, const char *token, th_body *b,
		    const char *requester, th_reply *out)
{
	natsStatus s = request_raw(f->nc, verb, token, b ? b->sb.data : "\x80",
				   b ? b->sb.size : 1, requester, out);
	if (b)
		msgpack_sbuffer_destroy(&b->sb);
	if (s != NATS_OK)
		fprintf(stderr, "request credentials.%s.%s: %s\n", verb, token,
			natsStatus_GetText(s));
	assert_int_equal(s, NATS_OK);
}

/* put provider/type = config; returns the key_version. */
static int64_t put(fixture *f, const char *org, const char *provider,
		   const char *type, const char *config, const char *requester)
{
	th_body b;
	th_reply r;
	th_body_init(&b, type ? 3 : 2);
	th_body_str(&b, "provider", provider);
	if (type)
		th_body_str(&b, "type", type);
	th_body_bin(&b, "config", config, strlen(config));
	request(f, "put", org, &b, requester, &r);
	if (r.code[0])
		fprintf(stderr, "put %s/%s: %s %s\n", provider, type ? type : "-", r.code, r.text);
	assert_string_equal(r.code, "");
	assert_int_equal(r.u.data.via.map.size, 2);
	const msgpack_object *id = th_get_key(&r.u.data, "id");
	const msgpack_object *kv = th_get_key(&r.u.data, "key_version");
	assert_true(th_has_key(&r.u.data, "id"));
	assert_int_equal(id->type, MSGPACK_OBJECT_STR);
	assert_int_equal(id->via.str.size, 36);
	assert_true(th_has_key(&r.u.data, "key_version"));
	assert_int_equal(kv->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	int64_t v = (int64_t)kv->via.u64;
	th_reply_free(&r);
	return v;
}

/* Append the reply_key of a fresh key pair (pk, sk) to a body. */
static void body_reply_key(th_body *b, uint8_t pk[crypto_box_PUBLICKEYBYTES],
			   uint8_t sk[crypto_box_SECRETKEYBYTES])
{
	crypto_box_keypair(pk, sk);
	th_body_bin(b, "reply_key", pk, crypto_box_PUBLICKEYBYTES);
}

/* get provider/type as a client must (a one-time reply_key), open the
 * sealed reply and compare with want; returns false (without failing)
 * when the reply is not exactly {sealed: box of want}, or when its bytes
 * carry want in the clear - for the reader thread. */
static bool get_is(natsConnection *nc, const char *org, const char *provider,
		   const char *type, const char *want, char *why, size_t whylen)
{
	uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	th_body b;
	th_reply r;
	th_body_init(&b, 3);
	th_body_str(&b, "provider", provider);
	th_body_str(&b, "type", type);
	body_reply_key(&b, pk, sk);
	natsStatus s = request_raw(nc, "get", org, b.sb.data, b.sb.size, "reader", &r);
	msgpack_sbuffer_destroy(&b.sb);
	bool ok = false;
	size_t n = strlen(want);
	if (s != NATS_OK) {
		snprintf(why, whylen, "request: %s", natsStatus_GetText(s));
	} else if (r.code[0]) {
		snprintf(why, whylen, "error %s: %s", r.code, r.text);
	} else if (mem_find(natsMsg_GetData(r.msg), (size_t)natsMsg_GetDataLength(r.msg),
			    want, n)) {
		snprintf(why, whylen, "the reply carries the secret in the clear");
	} else {
		const msgpack_object *c = th_get_key(&r.u.data, "sealed");
		uint8_t *plain = vox_malloc(n + 1);
		ok = r.u.data.via.map.size == 1 && c->type == MSGPACK_OBJECT_BIN &&
		     c->via.bin.size == n + crypto_box_SEALBYTES &&
		     crypto_box_seal_open(plain, (const uint8_t *)c->via.bin.ptr,
					  c->via.bin.size, pk, sk) == 0 &&
		     memcmp(plain, want, n) == 0;
		free(plain);
		if (!ok)
			snprintf(why, whylen, "wrong reply");
	}
	th_reply_free(&r);
	return ok;
}

static void assert_get(fixture *f, const char *org, const char *provider,
		       const char *type, const char *want)
{
	char why[256] = "";
	bool ok = get_is(f->nc, org, provider, type, want, why, sizeof(why));
	if (!ok)
		fprintf(stderr, "get %s/%s of %s: %s\n", provider, type, org, why);
	assert_true(ok);
}

/* A get (with a reply_key) answered with the error code. */
static void get_expect(fixture *f, const char *org, const char *provider,
		       const char *type, const char *code)
{
	uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	th_body b;
	th_reply r;
	th_body_init(&b, 3);
	th_body_str(&b, "provider", provider);
	th_body_str(&b, "type", type);
	body_reply_key(&b, pk, sk);
	request(f, "get", org, &b, NULL, &r);
	th_expect_error(&r, code);
}

/* Rows of table whose text form (every column) contains needle. */
static long long rows_containing(fixture *f, const char *table, const char *needle)
{
	PGresult *r;
	char sql[256];
	const char *params[1] = {needle};
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM %s t WHERE strpos(t::text, $1) > 0", table);
	r = PQexecParams(f->db, sql, 1, NULL, params, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return n;
}

/* The stored envelope of one row (binary), checked not to hold plain. */
static void assert_stored_sealed(fixture *f, const char *org, const char *provider,
				 const char *type, const char *plain)
{
	const char *params[3] = {org, provider, type};
	PGresult *r = PQexecParams(f->db,
		"SELECT encrypted_config FROM org_credentials WHERE org_id = $1::uuid"
		" AND provider = $2 AND type = $3", 3, NULL, params, NULL, NULL, 1);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	size_t n = (size_t)PQgetlength(r, 0, 0);
	assert_int_equal(n, VOX_VAULT_HEADER + strlen(plain) + VOX_VAULT_TAG);
	assert_null(mem_find(PQgetvalue(r, 0, 0), n, plain, strlen(plain)));
	/* nor a recognisable part of it */
	assert_null(mem_find(PQgetvalue(r, 0, 0), n, "TOP-SECRET", 10));
	PQclear(r);
}

static void assert_logs_clean(fixture *f)
{
	for (int i = 0; i < f->nlogs; i++) {
		assert_false(file_contains(f->logs[i], SECRET));
		assert_false(file_contains(f->logs[i], "TOP-SECRET"));
		assert_false(file_contains(f->logs[i], f->key1));
		assert_false(file_contains(f->logs[i], f->key2));
	}
}

/* ---- scenarios ---------------------------------------------------------- */

static void test_put_get_list_delete_round_trip(void **state)
{
	fixture *f = *state;
	add_org(f, ORG_A);
	start_vault(f, f->ring1);

	assert_int_equal(put(f, ORG_A, "twilio", NULL, SECRET, "alice@clinic"), 1);
	assert_int_equal(put(f, ORG_A, "openai", "inbound", SECRET "-openai", NULL), 1);
	assert_get(f, ORG_A, "twilio", "default", SECRET);
	assert_get(f, ORG_A, "openai", "inbound", SECRET "-openai");
	assert_stored_sealed(f, ORG_A, "twilio", "default", SECRET);
	assert_stored_sealed(f, ORG_A, "openai", "inbound", SECRET "-openai");
	/* get without type means default; an org_id key in the body is
	 * ignored (the org is the subject's) */
	uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	uint8_t plain[sizeof(SECRET)];
	th_body b;
	th_reply r;
	th_body_init(&b, 3);
	th_body_str(&b, "provider", "twilio");
	th_body_str(&b, "org_id", ORG_X);
	body_reply_key(&b, pk, sk);
	request(f, "get", ORG_A, &b, NULL, &r);
	assert_string_equal(r.code, "");
	const msgpack_object *sealed = th_get_key(&r.u.data, "sealed");
	assert_int_equal(sealed->type, MSGPACK_OBJECT_BIN);
	assert_int_equal(sealed->via.bin.size, strlen(SECRET) + crypto_box_SEALBYTES);
	assert_int_equal(crypto_box_seal_open(plain, (const uint8_t *)sealed->via.bin.ptr,
					      sealed->via.bin.size, pk, sk), 0);
	assert_memory_equal(plain, SECRET, strlen(SECRET));
	th_reply_free(&r);

	/* replace: same row id, new secret, a fresh nonce each time */
	long long id1 = sql_int(f, "SELECT count(*) FROM org_credentials");
	put(f, ORG_A, "twilio", "default", SECRET "-v2", "bob");
	assert_int_equal(sql_int(f, "SELECT count(*) FROM org_credentials"), id1);
	assert_get(f, ORG_A, "twilio", "default", SECRET "-v2");
	assert_stored_sealed(f, ORG_A, "twilio", "default", SECRET "-v2");

	/* list: provider, type, key_version, is_active, updated_at; no secret */
	request(f, "list", ORG_A, NULL, NULL, &r);
	assert_string_equal(r.code, "");
	assert_null(mem_find(natsMsg_GetData(r.msg), (size_t)natsMsg_GetDataLength(r.msg),
			   "TOP-SECRET", 10));
	const msgpack_object *items = th_get_key(&r.u.data, "items");
	assert_true(th_has_key(&r.u.data, "items"));
	assert_int_equal(items->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(items->via.array.size, 2);
	for (uint32_t i = 0; i < 2; i++) {
		const msgpack_object *it = &items->via.array.ptr[i];
		assert_int_equal(it->via.map.size, 5);
		const msgpack_object *ua = th_get_key(it, "updated_at");
		assert_true(th_has_key(it, "provider"));
		assert_true(th_has_key(it, "type"));
		assert_int_equal(th_get_key(it, "key_version")->via.u64, 1);
		assert_int_equal(th_get_key(it, "is_active")->type, MSGPACK_OBJECT_BOOLEAN);
		assert_true(th_has_key(it, "updated_at"));
		assert_int_equal(ua->type, MSGPACK_OBJECT_STR);
		/* RFC 3339, UTC: 2025-01-02T03:04:05.123456Z */
		assert_int_equal(ua->via.str.size, 27);
		assert_int_equal(ua->via.str.ptr[10], 'T');
		assert_int_equal(ua->via.str.ptr[26], 'Z');
	}
	assert_memory_equal(th_get_key(&items->via.array.ptr[0], "provider")->via.str.ptr,
			    "openai", 6);
	th_reply_free(&r);

	/* delete, twice */
	for (int round = 0; round < 2; round++) {
		th_body_init(&b, 2);
		th_body_str(&b, "provider", "twilio");
		th_body_str(&b, "type", "default");
		request(f, "delete", ORG_A, &b, "carol", &r);
		assert_string_equal(r.code, "");
		const msgpack_object *d = th_get_key(&r.u.data, "deleted");
		assert_true(th_has_key(&r.u.data, "deleted"));
		assert_int_equal(d->type, MSGPACK_OBJECT_BOOLEAN);
		assert_int_equal(d->via.boolean, round == 0);
		th_reply_free(&r);
	}
	get_expect(f, ORG_A, "twilio", "default", "404");
	assert_get(f, ORG_A, "openai", "inbound", SECRET "-openai");

	/* the audit trail: who, what, which row, how it ended; never the
	 * secret */
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE action ="
				    " 'credentials.put'"), 3);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE action ="
				    " 'credentials.get'"), 6);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE action ="
				    " 'credentials.get' AND details->>'code' = '404'"
				    " AND details->>'error' = 'no such credential'"), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE action ="
				    " 'credentials.delete'"), 2);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE action ="
				    " 'credentials.put' AND actor = 'alice@clinic'"
				    " AND details->>'provider' = 'twilio'"
				    " AND details->>'type' = 'default'"
				    " AND details->>'key_version' = '1'"), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE actor = 'unknown'"),
			 3);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE action ="
				    " 'credentials.delete' AND actor = 'carol'"), 2);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE action ="
				    " 'credentials.delete' AND details->>'deleted' = 'false'"
				    " AND details->>'code' = '200' AND resource_id IS NULL"), 1);
	/* a row for every request that touched or found one, and only those
	 * (the 404 get, the delete that found nothing) without */
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE org_id <> '"
				    ORG_A "' OR resource_type <> 'org_credentials'"), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE resource_id IS NULL"),
			 2);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs a JOIN org_credentials c"
				    " ON c.id::text = a.resource_id WHERE c.provider = 'openai'"), 3);
	assert_int_equal(rows_containing(f, "audit_logs", "TOP-SECRET"), 0);
	assert_int_equal(rows_containing(f, "org_credentials", "TOP-SECRET"), 0);
	stop_vault(f);
	assert_logs_clean(f);
}

static void test_get_with_reply_key_is_sealed_to_the_requester(void **state)
{
	fixture *f = *state;
	uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	uint8_t pk2[crypto_box_PUBLICKEYBYTES], sk2[crypto_box_SECRETKEYBYTES];
	crypto_box_keypair(pk, sk);
	crypto_box_keypair(pk2, sk2);
	add_org(f, ORG_A);
	start_vault(f, f->ring1);
	put(f, ORG_A, "deepgram", "outbound", SECRET, NULL);

	th_body b;
	th_reply r;
	th_body_init(&b, 3);
	th_body_str(&b, "provider", "deepgram");
	th_body_str(&b, "type", "outbound");
	th_body_bin(&b, "reply_key", pk, sizeof(pk));
	request(f, "get", ORG_A, &b, NULL, &r);
	assert_string_equal(r.code, "");
	assert_int_equal(r.u.data.via.map.size, 1);
	assert_false(th_has_key(&r.u.data, "config"));
	assert_null(mem_find(natsMsg_GetData(r.msg), (size_t)natsMsg_GetDataLength(r.msg),
			   "TOP-SECRET", 10));
	const msgpack_object *s = th_get_key(&r.u.data, "sealed");
	assert_true(th_has_key(&r.u.data, "sealed"));
	assert_int_equal(s->type, MSGPACK_OBJECT_BIN);
	assert_int_equal(s->via.bin.size, strlen(SECRET) + crypto_box_SEALBYTES);
	uint8_t plain[256];
	assert_int_equal(crypto_box_seal_open(plain, (const uint8_t *)s->via.bin.ptr,
					      s->via.bin.size, pk, sk), 0);
	assert_memory_equal(plain, SECRET, strlen(SECRET));
	assert_int_not_equal(crypto_box_seal_open(plain, (const uint8_t *)s->via.bin.ptr,
						  s->via.bin.size, pk2, sk2), 0);
	th_reply_free(&r);

	/* a reply_key that is not 32 bytes of bin */
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "deepgram");
	th_body_bin(&b, "reply_key", pk, 31);
	request(f, "get", ORG_A, &b, NULL, &r);
	th_expect_error(&r, "400");
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "deepgram");
	th_body_str(&b, "reply_key", "0123456789abcdef0123456789abcdef");
	request(f, "get", ORG_A, &b, NULL, &r);
	th_expect_error(&r, "400");
	stop_vault(f);
	assert_logs_clean(f);
}

/* Every reply on the private server's inboxes, for the wiretap below. */
typedef struct tap {
	pthread_mutex_t lock;
	int replies, with_secret;
} tap;

static void on_tap(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	tap *t = closure;
	VOX_UNUSED(nc);
	VOX_UNUSED(sub);
	bool leak = mem_find(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), SECRET,
			     strlen(SECRET)) ||
		    mem_find(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), "TOP-SECRET",
			     10);
	pthread_mutex_lock(&t->lock);
	t->replies++;
	t->with_secret += leak;
	pthread_mutex_unlock(&t->lock);
	natsMsg_Destroy(m);
}

/* vox never sends a credential in the clear: a get without reply_key is a
 * 400 naming the field, whatever else the request holds, and no reply on
 * any inbox carries the secret. */
static void test_get_without_reply_key_is_refused(void **state)
{
	fixture *f = *state;
	natsConnection *spy = NULL;
	natsSubscription *sub = NULL;
	tap t = {.replies = 0};
	pthread_mutex_init(&t.lock, NULL);
	add_org(f, ORG_A);
	start_vault(f, f->ring1);
	th_nats_connect(f->nats.url, &spy);
	assert_int_equal(natsConnection_Subscribe(&sub, spy, "_INBOX.>", on_tap, &t), NATS_OK);
	assert_int_equal(natsConnection_Flush(spy), NATS_OK);
	put(f, ORG_A, "twilio", NULL, SECRET, NULL);
	put(f, ORG_A, "vapi", "outbound", SECRET, NULL);

	th_body b;
	th_reply r;
	for (int shape = 0; shape < 4; shape++) {
		th_body_init(&b, shape == 0 ? 1 : shape == 3 ? 3 : 2);
		th_body_str(&b, "provider", shape == 2 ? "vapi" : "twilio");
		if (shape == 1)
			th_body_str(&b, "type", "default");
		if (shape == 2)
			th_body_str(&b, "type", "outbound");
		if (shape == 3) {
			th_body_str(&b, "type", "default");
			th_body_key(&b, "reply_key");
			msgpack_pack_nil(&b.pk); /* nil is no key either */
		}
		request(f, "get", ORG_A, &b, "plain-reader", &r);
		if (shape == 3) {
			th_expect_error(&r, "400"); /* not a 32-byte bin */
			continue;
		}
		assert_non_null(strstr(r.text, "reply_key: required"));
		assert_non_null(strstr(r.text, "sealed"));
		th_expect_error(&r, "400");
	}
	/* the same credentials, asked for properly */
	assert_get(f, ORG_A, "twilio", "default", SECRET);
	assert_get(f, ORG_A, "vapi", "outbound", SECRET);
	/* the field is checked before the org: an unknown org, still 400 */
	th_body_init(&b, 1);
	th_body_str(&b, "provider", "twilio");
	request(f, "get", ORG_X, &b, NULL, &r);
	th_expect_error(&r, "400");

	assert_int_equal(natsConnection_Flush(f->nc), NATS_OK);
	assert_int_equal(natsConnection_Flush(spy), NATS_OK);
	pthread_mutex_lock(&t.lock);
	int replies = t.replies, leaks = t.with_secret;
	pthread_mutex_unlock(&t.lock);
	assert_true(replies >= 9); /* the tap saw the replies */
	assert_int_equal(leaks, 0);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(spy);
	pthread_mutex_destroy(&t.lock);
	stop_vault(f);
	assert_logs_clean(f);
}

static void test_rows_that_do_not_open_fail_with_500(void **state)
{
	fixture *f = *state;
	add_org(f, ORG_A);
	add_org(f, ORG_B);
	add_org(f, ORG_C);
	start_vault(f, f->ring1);
	put(f, ORG_A, "stripe", NULL, SECRET, NULL);
	put(f, ORG_A, "resend", NULL, SECRET "-resend", NULL);

	/* copied to another org, byte for byte */
	sql_ok(f, "INSERT INTO org_credentials (org_id, provider, type,"
		  " encrypted_config, key_version) SELECT '" ORG_B "', provider, type,"
		  " encrypted_config, key_version FROM org_credentials"
		  " WHERE org_id = '" ORG_A "' AND provider = 'stripe'");
	get_expect(f, ORG_B, "stripe", "default", "500");
	/* moved to another org */
	sql_ok(f, "INSERT INTO org_credentials (org_id, provider, type,"
		  " encrypted_config, key_version) SELECT '" ORG_C "', provider, type,"
		  " encrypted_config, key_version FROM org_credentials"
		  " WHERE org_id = '" ORG_A "' AND provider = 'resend'");
	sql_ok(f, "DELETE FROM org_credentials WHERE org_id = '" ORG_A "'"
		  " AND provider = 'resend'");
	get_expect(f, ORG_C, "resend", "default", "500");
	/* relabelled as another provider */
	sql_ok(f, "UPDATE org_credentials SET provider = 'vapi' WHERE org_id = '"
		  ORG_B "'");
	get_expect(f, ORG_B, "vapi", "default", "500");
	/* the original still opens */
	assert_get(f, ORG_A, "stripe", "default", SECRET);
	/* one flipped byte of the ciphertext */
	sql_ok(f, "UPDATE org_credentials SET encrypted_config = set_byte(encrypted_config,"
		  " 40, get_byte(encrypted_config, 40) # 1) WHERE org_id = '" ORG_A "'");
	get_expect(f, ORG_A, "stripe", "default", "500");
	/* a key version the ring does not hold */
	sql_ok(f, "UPDATE org_credentials SET encrypted_config = set_byte(encrypted_config,"
		  " 4, 9), key_version = 9 WHERE org_id = '" ORG_C "'");
	get_expect(f, ORG_C, "resend", "default", "500");

	uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	th_body b;
	th_reply r;
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "stripe");
	body_reply_key(&b, pk, sk);
	request(f, "get", ORG_A, &b, NULL, &r);
	assert_string_equal(r.code, "500");
	assert_non_null(strstr(r.text, "credential cannot be decrypted"));
	th_reply_free(&r);
	assert_int_equal(th_count_in_log(f->log, "msg=\"credential cannot be decrypted\""), 6);
	/* the actor is still serving */
	request(f, "list", ORG_A, NULL, NULL, &r);
	assert_string_equal(r.code, "");
	th_reply_free(&r);
	stop_vault(f);
	assert_logs_clean(f);
}

static void test_refusals(void **state)
{
	fixture *f = *state;
	th_body b;
	th_reply r;
	add_org(f, ORG_A);
	start_vault(f, f->ring1);

	/* unknown provider, unknown type */
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "myspace");
	th_body_str(&b, "config", SECRET);
	request(f, "put", ORG_A, &b, NULL, &r);
	th_expect_error(&r, "400");
	th_body_init(&b, 3);
	th_body_str(&b, "provider", "twilio");
	th_body_str(&b, "type", "sideways");
	th_body_str(&b, "config", SECRET);
	request(f, "put", ORG_A, &b, NULL, &r);
	th_expect_error(&r, "400");
	get_expect(f, ORG_A, "myspace", "default", "400");
	/* oversized: one byte over the limit; the limit itself is fine */
	char *big = vox_malloc(VOX_VAULT_MAX_CONFIG + 2);
	memset(big, 'x', VOX_VAULT_MAX_CONFIG + 1);
	big[VOX_VAULT_MAX_CONFIG + 1] = '\0';
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "twilio");
	th_body_bin(&b, "config", big, VOX_VAULT_MAX_CONFIG + 1);
	request(f, "put", ORG_A, &b, NULL, &r);
	th_expect_error(&r, "413");
	big[VOX_VAULT_MAX_CONFIG] = '\0';
	put(f, ORG_A, "hubspot", NULL, big, NULL);
	assert_get(f, ORG_A, "hubspot", "default", big);
	free(big);
	/* not a map: an array, an integer, garbage, a map with trailing bytes */
	static const struct {
		const char *bytes;
		size_t len;
	} not_maps[] = {
		{"\x91\xa6twilio", 8}, {"\x2a", 1}, {"\xc1", 1},
		{"\x81\xa8provider", 10}, {"\x80\x80", 2}, {"\xdf\xff\xff\xff\xff", 5},
	};
	for (size_t i = 0; i < VOX_NELEM(not_maps); i++) {
		assert_int_equal(request_raw(f->nc, "put", ORG_A, not_maps[i].bytes,
					     not_maps[i].len, NULL, &r), NATS_OK);
		th_expect_error(&r, "400");
		assert_int_equal(request_raw(f->nc, "get", ORG_A, not_maps[i].bytes,
					     not_maps[i].len, NULL, &r), NATS_OK);
		th_expect_error(&r, "400");
	}
	/* no provider; no config; provider of the wrong type */
	th_body_init(&b, 1);
	th_body_str(&b, "config", SECRET);
	request(f, "put", ORG_A, &b, NULL, &r);
	th_expect_error(&r, "400");
	th_body_init(&b, 1);
	th_body_str(&b, "provider", "twilio");
	request(f, "put", ORG_A, &b, NULL, &r);
	th_expect_error(&r, "400");
	request(f, "get", ORG_A, NULL, NULL, &r);
	th_expect_error(&r, "400");
	request(f, "delete", ORG_A, NULL, NULL, &r);
	th_expect_error(&r, "400");
	th_body_init(&b, 2);
	msgpack_pack_str(&b.pk, 8);
	msgpack_pack_str_body(&b.pk, "provider", 8);
	msgpack_pack_int(&b.pk, 7);
	th_body_str(&b, "config", SECRET);
	request(f, "put", ORG_A, &b, NULL, &r);
	th_expect_error(&r, "400");
	/* bad org tokens */
	static const char *const bad_orgs[] = {
		"not-a-uuid", "a0000000-0000-4000-8000-00000000000", "a0000000x0000-4000-8000-00000000000a",
		"g0000000-0000-4000-8000-00000000000a",
	};
	for (size_t i = 0; i < VOX_NELEM(bad_orgs); i++) {
		const char *verbs[] = {"put", "get", "list", "delete"};
		for (size_t v = 0; v < 4; v++) {
			th_body_init(&b, 2);
			th_body_str(&b, "provider", "twilio");
			th_body_str(&b, "config", SECRET);
			request(f, verbs[v], bad_orgs[i], &b, NULL, &r);
			th_expect_error(&r, "400");
		}
	}
	/* unknown org, for every verb */
	{
		const char *verbs[] = {"put", "get", "list", "delete"};
		for (size_t v = 0; v < 4; v++) {
			uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
			th_body_init(&b, 3);
			th_body_str(&b, "provider", "twilio");
			th_body_str(&b, "config", SECRET);
			body_reply_key(&b, pk, sk);
			request(f, verbs[v], ORG_X, &b, NULL, &r);
			th_expect_error(&r, "404");
		}
	}
	/* an uppercase UUID is the same org */
	put(f, "A0000000-0000-4000-8000-00000000000A", "cartesia", NULL, SECRET, NULL);
	assert_get(f, ORG_A, "cartesia", "default", SECRET);
	/* missing credential */
	get_expect(f, ORG_A, "salesforce", "default", "404");
	get_expect(f, ORG_A, "cartesia", "inbound", "404");
	/* nothing refused was written; every request whose org token is a
	 * UUID was audited with its outcome (list is not audited) */
	assert_int_equal(sql_int(f, "SELECT count(*) FROM org_credentials"), 2);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs"), 30);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs"
				    " WHERE details->>'code' = '200'"), 4);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs"
				    " WHERE details->>'code' = '400'"), 20);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs"
				    " WHERE details->>'code' = '413'"), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs"
				    " WHERE details->>'code' = '404'"), 5);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs"
				    " WHERE org_id IS NULL AND details->>'org_id' = '" ORG_X "'"), 3);
	assert_int_equal(rows_containing(f, "audit_logs", "TOP-SECRET"), 0);
	stop_vault(f);
	assert_logs_clean(f);
}

/* The audit_logs rows of one action whose details match cond (SQL). */
static long long audit_rows(fixture *f, const char *action, const char *cond)
{
	return sql_int(f, "SELECT count(*) FROM audit_logs WHERE action = '%s' AND (%s)",
		       action, cond);
}

/* Every put, get and delete is audited once its org is known, whatever
 * it came to: the outcome's code (and the error answered) in details,
 * the row when there is one, the org when it exists (else in details),
 * never the secret. */
static void test_every_outcome_is_audited(void **state)
{
	fixture *f = *state;
	th_body b;
	th_reply r;
	uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	add_org(f, ORG_A);
	start_vault(f, f->ring1);

	put(f, ORG_A, "twilio", NULL, SECRET, "auditor");
	/* put: unknown provider (400), too large (413), no config (400),
	 * unknown org (404) */
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "myspace");
	th_body_str(&b, "config", SECRET);
	request(f, "put", ORG_A, &b, "auditor", &r);
	th_expect_error(&r, "400");
	char *big = vox_malloc(VOX_VAULT_MAX_CONFIG + 1);
	memset(big, 'y', VOX_VAULT_MAX_CONFIG + 1);
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "stripe");
	th_body_bin(&b, "config", big, VOX_VAULT_MAX_CONFIG + 1);
	request(f, "put", ORG_A, &b, "auditor", &r);
	th_expect_error(&r, "413");
	free(big);
	th_body_init(&b, 1);
	th_body_str(&b, "provider", "stripe");
	request(f, "put", ORG_A, &b, "auditor", &r);
	th_expect_error(&r, "400");
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "stripe");
	th_body_str(&b, "config", SECRET);
	request(f, "put", ORG_X, &b, "auditor", &r);
	th_expect_error(&r, "404");

	/* get: found (200), no reply_key (400), no such credential (404),
	 * no such org (404), a row that does not open (500) */
	assert_get(f, ORG_A, "twilio", "default", SECRET);
	th_body_init(&b, 1);
	th_body_str(&b, "provider", "twilio");
	request(f, "get", ORG_A, &b, "auditor", &r);
	th_expect_error(&r, "400");
	get_expect(f, ORG_A, "vapi", "inbound", "404");
	get_expect(f, ORG_X, "vapi", "default", "404");
	put(f, ORG_A, "resend", NULL, SECRET "-resend", "auditor");
	sql_ok(f, "UPDATE org_credentials SET encrypted_config = set_byte(encrypted_config,"
		  " 40, get_byte(encrypted_config, 40) # 1) WHERE provider = 'resend'");
	get_expect(f, ORG_A, "resend", "default", "500");

	/* delete: done (200), nothing to delete (200), no such org (404),
	 * no provider (400) */
	for (int i = 0; i < 2; i++) {
		th_body_init(&b, 1);
		th_body_str(&b, "provider", "resend");
		request(f, "delete", ORG_A, &b, "auditor", &r);
		assert_string_equal(r.code, "");
		th_reply_free(&r);
	}
	th_body_init(&b, 1);
	th_body_str(&b, "provider", "resend");
	request(f, "delete", ORG_X, &b, "auditor", &r);
	th_expect_error(&r, "404");
	request(f, "delete", ORG_A, NULL, "auditor", &r);
	th_expect_error(&r, "400");
	/* an org token that is not a UUID names no org: not audited */
	request_raw(f->nc, "get", "not-an-org", "\x80", 1, "auditor", &r);
	th_expect_error(&r, "400");

	const char *put_a = "credentials.put", *get_a = "credentials.get",
		   *del_a = "credentials.delete";
	assert_int_equal(audit_rows(f, put_a, "true"), 6);
	assert_int_equal(audit_rows(f, put_a, "details->>'code' = '200' AND org_id = '"
				    ORG_A "' AND resource_id IS NOT NULL"
				    " AND details->>'key_version' = '1'"), 2);
	assert_int_equal(audit_rows(f, put_a, "details->>'code' = '400' AND details->>'reason'"
				    " = 'bad_enum' AND details->>'error' LIKE"
				    " 'provider: must be one of vapi|%%' AND org_id = '" ORG_A "'"
				    " AND resource_id IS NULL AND details->>'provider' IS NULL"), 1);
	assert_int_equal(audit_rows(f, put_a, "details->>'code' = '413'"
				    " AND details->>'provider' = 'stripe'"), 1);
	assert_int_equal(audit_rows(f, put_a, "details->>'code' = '400'"
				    " AND details->>'error' = 'config: required'"), 1);
	assert_int_equal(audit_rows(f, put_a, "details->>'code' = '404' AND org_id IS NULL"
				    " AND details->>'org_id' = '" ORG_X "'"), 1);
	assert_int_equal(audit_rows(f, get_a, "true"), 5);
	assert_int_equal(audit_rows(f, get_a, "details->>'code' = '200' AND resource_id ="
				    " (SELECT id::text FROM org_credentials WHERE provider = 'twilio')"
				    " AND actor = 'reader'"), 1);
	assert_int_equal(audit_rows(f, get_a, "details->>'code' = '400' AND details->>'error'"
				    " LIKE 'reply_key: required%%' AND actor = 'auditor'"
				    " AND details->>'provider' = 'twilio'"), 1);
	assert_int_equal(audit_rows(f, get_a, "details->>'code' = '404' AND org_id = '" ORG_A
				    "' AND details->>'provider' = 'vapi'"
				    " AND details->>'type' = 'inbound' AND resource_id IS NULL"), 1);
	assert_int_equal(audit_rows(f, get_a, "details->>'code' = '404' AND org_id IS NULL"
				    " AND details->>'org_id' = '" ORG_X "'"), 1);
	assert_int_equal(audit_rows(f, get_a, "details->>'code' = '500' AND resource_id IS NOT"
				    " NULL AND details->>'key_version' = '1'"
				    " AND details->>'error' = 'credential cannot be decrypted'"), 1);
	assert_int_equal(audit_rows(f, del_a, "true"), 4);
	assert_int_equal(audit_rows(f, del_a, "details->>'code' = '200'"
				    " AND details->>'deleted' = 'true' AND resource_id IS NOT NULL"), 1);
	assert_int_equal(audit_rows(f, del_a, "details->>'code' = '200'"
				    " AND details->>'deleted' = 'false' AND resource_id IS NULL"), 1);
	assert_int_equal(audit_rows(f, del_a, "details->>'code' = '404' AND org_id IS NULL"), 1);
	assert_int_equal(audit_rows(f, del_a, "details->>'code' = '400'"
				    " AND details->>'error' = 'provider: required'"), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE resource_type"
				    " IS DISTINCT FROM 'org_credentials' OR actor IS NULL"
				    " OR details->>'code' IS NULL"), 0);
	assert_int_equal(rows_containing(f, "audit_logs", "TOP-SECRET"), 0);
	assert_int_equal(th_count_in_log(f->log, "audit row not written"), 0);

	/* an audit row that cannot be written: nothing is handed out or
	 * changed, the answer is the database error, and the log says so */
	sql_ok(f, "CREATE FUNCTION vault_test_no_audit() RETURNS trigger LANGUAGE plpgsql"
		  " AS $$BEGIN RAISE EXCEPTION 'audit refused by the test'; END$$");
	sql_ok(f, "CREATE TRIGGER vault_test_no_audit BEFORE INSERT ON audit_logs"
		  " FOR EACH ROW EXECUTE FUNCTION vault_test_no_audit()");
	get_expect(f, ORG_A, "twilio", "default", "500");
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "openai");
	th_body_str(&b, "config", SECRET);
	request(f, "put", ORG_A, &b, "auditor", &r);
	th_expect_error(&r, "500");
	th_body_init(&b, 1);
	th_body_str(&b, "provider", "twilio");
	request(f, "delete", ORG_A, &b, "auditor", &r);
	th_expect_error(&r, "500");
	get_expect(f, ORG_A, "vapi", "default", "404"); /* a refusal stays itself */
	assert_int_equal(sql_int(f, "SELECT count(*) FROM org_credentials WHERE provider"
				    " IN ('twilio', 'openai')"), 1);
	assert_int_equal(th_count_in_log(f->log, "msg=\"audit row not written"), 4);
	sql_ok(f, "DROP TRIGGER vault_test_no_audit ON audit_logs");
	assert_get(f, ORG_A, "twilio", "default", SECRET);
	stop_vault(f);

	/* the database unreachable: 503, and the log says the row is missing */
	char bad_dsn[600];
	snprintf(bad_dsn, sizeof(bad_dsn), "VOX_PG_DSN=host=127.0.0.1 port=%d dbname=none"
		 " connect_timeout=2", th_free_port());
	char keys[400];
	snprintf(keys, sizeof(keys), "VOX_VAULT_KEYS=%s", f->ring1);
	const char *down[] = {keys, bad_dsn, NULL};
	start_vault_env(f, down);
	th_body_init(&b, 2);
	th_body_str(&b, "provider", "twilio");
	body_reply_key(&b, pk, sk);
	request(f, "get", ORG_A, &b, "auditor", &r);
	th_expect_error(&r, "503");
	assert_int_equal(th_count_in_log(f->log, "msg=\"audit row not written"), 1);
	stop_vault(f);
	assert_logs_clean(f);
}

static void test_key_configuration(void **state)
{
	fixture *f = *state;
	char keys[400], file[600], path[560];
	int ws;
	/* neither, and both: configuration errors (exit 2) */
	pid_t p = spawn_vault(f, NULL);
	assert_int_equal(waitpid(p, &ws, 0), p);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 2);
	assert_true(file_contains(f->log, "VOX_VAULT_KEYS"));
	snprintf(path, sizeof(path), "%s/vault-keys-%ld-%d", th_env("VOX_TEST_TMP"),
		 (long)getpid(), f->run);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "%s", f->ring12);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);
	snprintf(keys, sizeof(keys), "VOX_VAULT_KEYS=%s", f->ring1);
	snprintf(file, sizeof(file), "VOX_VAULT_KEY_FILE=%s", path);
	const char *both[] = {keys, file, NULL};
	p = spawn_vault(f, both);
	assert_int_equal(waitpid(p, &ws, 0), p);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 2);
	/* a malformed ring is refused without echoing it */
	const char *bad[] = {"VOX_VAULT_KEYS=1 notbase64!!\n", NULL};
	p = spawn_vault(f, bad);
	assert_int_equal(waitpid(p, &ws, 0), p);
	assert_true(WIFEXITED(ws));
	assert_int_not_equal(WEXITSTATUS(ws), 0);
	assert_false(file_contains(f->log, "notbase64"));
	/* a key file others may read is refused */
	assert_int_equal(chmod(path, 0644), 0);
	const char *loose[] = {file, NULL};
	p = spawn_vault(f, loose);
	assert_int_equal(waitpid(p, &ws, 0), p);
	assert_true(WIFEXITED(ws));
	assert_int_not_equal(WEXITSTATUS(ws), 0);
	/* 0600: served, sealed with the file's active key (2) */
	assert_int_equal(chmod(path, 0600), 0);
	add_org(f, ORG_A);
	f->actor = spawn_vault(f, loose);
	for (int t = 0; t < 200 && th_count_in_log(f->log, "msg=\"started\"") < 1; t++)
		th_sleep_ms(100);
	assert_int_equal(th_count_in_log(f->log, "msg=\"started\""), 1);
	assert_int_equal(put(f, ORG_A, "elevenlabs", NULL, SECRET, NULL), 2);
	assert_get(f, ORG_A, "elevenlabs", "default", SECRET);
	stop_vault(f);
	unlink(path);
	assert_logs_clean(f);
}

/* ---- no core dumps -------------------------------------------------------- */

static void vault_meta(fixture *f, const char *verb, const char *key, char *out,
		       size_t outlen);

/* Spawn vox-vault like spawn_vault, but (when the test runs as root) as
 * the unprivileged user nobody: the owner of the files in /proc/<pid>
 * then tells whether the process is dumpable (its own uid) or not
 * (root). */
static pid_t spawn_vault_unprivileged(fixture *f, const char *ring)
{
	snprintf(f->log, sizeof(f->log), "%s/vault-%ld-%d-%d.log", th_env("VOX_TEST_TMP"),
		 (long)getpid(), f->run, f->nlogs);
	if (f->nlogs < 8)
		snprintf(f->logs[f->nlogs++], sizeof(f->logs[0]), "%s", f->log);
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setenv("VOX_NATS_URL", f->nats.url, 1) != 0 ||
		    setenv("VOX_PG_DSN", f->dsn, 1) != 0 ||
		    setenv("VOX_VAULT_KEYS", ring, 1) != 0 || unsetenv("VOX_VAULT_KEY_FILE") != 0 ||
		    !freopen(f->log, "a", stderr))
			_exit(126);
		if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
				       setuid(65534) != 0))
			_exit(126);
		/* after the change of user, which clears it */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(125);
		execl(th_bin("vox-vault"), "vox-vault", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The "Uid:" line's real uid in /proc/<pid>/status, -1 if unreadable. */
static long proc_uid(pid_t pid)
{
	char path[64], line[256];
	long uid = -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	FILE *fp = fopen(path, "r");
	while (fp && fgets(line, sizeof(line), fp))
		if (strncmp(line, "Uid:", 4) == 0)
			uid = strtol(line + 4, NULL, 10);
	if (fp)
		fclose(fp);
	return uid;
}

/* vox-vault holds master keys and plaintext credentials in memory: it
 * makes itself non-dumpable at start (no core file, no ptrace or
 * /proc/<pid>/mem by its own user). The kernel shows it in the owner of
 * the files in /proc/<pid> (not of the directory itself): root for a
 * process that is not dumpable, the process's own uid otherwise. */
static void test_vault_is_not_dumpable(void **state)
{
	fixture *f = *state;
	char path[64];
	struct stat sb;
	f->actor = spawn_vault_unprivileged(f, f->ring1);
	th_wait_started(&f->actor, "vox-vault", f->log, 200);
	long uid = proc_uid(f->actor);
	if (geteuid() == 0)
		assert_int_equal(uid, 65534);
	else
		assert_int_equal(uid, (long)geteuid());
	static const char *const files[] = {"status", "environ", "mem"};
	for (size_t i = 0; i < VOX_NELEM(files); i++) {
		snprintf(path, sizeof(path), "/proc/%ld/%s", (long)f->actor, files[i]);
		assert_int_equal(stat(path, &sb), 0);
		if (sb.st_uid != 0)
			fprintf(stderr, "%s is owned by %ld: vox-vault is dumpable\n", path,
				(long)sb.st_uid);
		assert_int_equal(sb.st_uid, 0);
	}
	/* and it serves (the services protocol: as nobody it cannot read the
	 * test database's password file) */
	char got[32];
	vault_meta(f, "INFO", "vault.active_key_version", got, sizeof(got));
	assert_string_equal(got, "1");
	stop_vault(f);
	assert_logs_clean(f);
}

/* Whether the memory of process pid (every readable mapping, read
 * through /proc/<pid>/mem: root may, although it is not dumpable) holds
 * needle. */
static bool memory_holds(pid_t pid, const char *needle)
{
	char path[64], line[512];
	bool found = false;
	size_t nl = strlen(needle);
	snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
	FILE *maps = fopen(path, "r");
	assert_non_null(maps);
	snprintf(path, sizeof(path), "/proc/%ld/mem", (long)pid);
	FILE *mem = fopen(path, "rb");
	assert_non_null(mem);
	char *chunk = vox_malloc(1 << 20);
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r')
			continue;
		/* overlapping reads so that no match straddles two */
		for (unsigned long at = lo; !found && at < hi;) {
			size_t want = hi - at < (1u << 20) ? hi - at : (1u << 20);
			if (fseeko(mem, (off_t)at, SEEK_SET) != 0)
				break;
			size_t got = fread(chunk, 1, want, mem);
			clearerr(mem);
			if (got == 0)
				break; /* a guard page, [vvar]: not readable */
			found = mem_find(chunk, got, needle, nl) != NULL;
			at += got > nl ? got - nl : got;
			if (got < want)
				break;
		}
	}
	free(chunk);
	fclose(mem);
	fclose(maps);
	return found;
}

/* Buffers that held a secret are wiped before they are freed: after a
 * put and gets of a credential, nothing in vox-vault's memory still
 * holds it. Other traffic first overwrites libnats's own read buffer,
 * which vox cannot wipe. */
static void test_no_secret_left_in_memory(void **state)
{
	fixture *f = *state;
	char secret[80];
	uint8_t r8[16];
	randombytes_buf(r8, sizeof(r8));
	snprintf(secret, sizeof(secret), "memscan-");
	for (size_t i = 0; i < sizeof(r8); i++)
		snprintf(secret + 8 + 2 * i, 3, "%02x", r8[i]);
	th_secret(secret);
	add_org(f, ORG_A);
	start_vault(f, f->ring1);
	assert_false(memory_holds(f->actor, secret));
	put(f, ORG_A, "twilio", NULL, secret, "scanner");
	put(f, ORG_A, "twilio", "inbound", secret, "scanner");
	for (int i = 0; i < 3; i++)
		assert_get(f, ORG_A, "twilio", "default", secret);
	/* a put refused after its body was read holds the secret too */
	th_body b;
	th_reply r;
	th_body_init(&b, 3);
	th_body_str(&b, "provider", "twilio");
	th_body_str(&b, "type", "sideways");
	th_body_str(&b, "config", secret);
	request(f, "put", ORG_A, &b, NULL, &r);
	th_expect_error(&r, "400");
	char *pad = vox_malloc(8192);
	memset(pad, 'p', 8192);
	for (int i = 0; i < 8; i++) {
		th_body_init(&b, 1);
		th_body_bin(&b, "padding", pad, 8192);
		request(f, "list", ORG_A, &b, NULL, &r);
		assert_string_equal(r.code, "");
		th_reply_free(&r);
	}
	free(pad);
	bool held = memory_holds(f->actor, secret);
	if (held)
		fprintf(stderr, "vox-vault's memory still holds the secret\n");
	assert_false(held);
	/* the scan is real: it finds the secret where it still is, in this
	 * test's own memory */
	assert_true(memory_holds(getpid(), secret));
	stop_vault(f);
	assert_logs_clean(f);
}

/* ---- key ring reloads (SIGHUP) ------------------------------------------ */

/* Replace the key file at path with text, then give it mode. */
static void write_key_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* The metadata member key of vox-vault's $SRV.<verb>.vox-vault reply
 * ("" when absent); fails when nothing answers. */
static void vault_meta(fixture *f, const char *verb, const char *key, char *out,
		       size_t outlen)
{
	char subject[64];
	natsMsg *m = NULL;
	snprintf(subject, sizeof(subject), "$SRV.%s.vox-vault", verb);
	assert_int_equal(natsConnection_RequestString(&m, f->nc, subject, "", 2000),
			 NATS_OK);
	vox_json *doc = vox_json_parse(natsMsg_GetData(m),
				       (size_t)natsMsg_GetDataLength(m), NULL);
	assert_non_null(doc);
	const vox_json *v = vox_json_get(vox_json_get(doc, "metadata"), key);
	snprintf(out, outlen, "%s",
		 vox_json_type_of(v) == VOX_JSON_STRING ? vox_json_str(v) : "");
	vox_json_free(doc);
	natsMsg_Destroy(m);
}

/* Send SIGHUP, wait (bounded) until the log holds want lines with
 * needle, and require that the actor still runs. */
static void hangup(fixture *f, const char *needle, int want)
{
	assert_int_equal(kill(f->actor, SIGHUP), 0);
	for (int t = 0; t < 100 && th_count_in_log(f->log, needle) < want &&
			th_alive(f->actor); t++)
		th_sleep_ms(50);
	if (th_count_in_log(f->log, needle) != want)
		th_print_tail(f->log, 2048);
	assert_int_equal(th_count_in_log(f->log, needle), want);
	assert_true(th_alive(f->actor));
}

/* INFO and STATS both report the active key version. */
static void assert_active_version(fixture *f, const char *want)
{
	char got[32];
	vault_meta(f, "INFO", "vault.active_key_version", got, sizeof(got));
	assert_string_equal(got, want);
	vault_meta(f, "STATS", "vault.active_key_version", got, sizeof(got));
	assert_string_equal(got, want);
}

static void test_sighup_reloads_the_key_file(void **state)
{
	fixture *f = *state;
	char path[560], file[600], ring[400], got[32];
	snprintf(path, sizeof(path), "%s/vault-hup-%ld-%d", th_env("VOX_TEST_TMP"),
		 (long)getpid(), f->run);
	snprintf(file, sizeof(file), "VOX_VAULT_KEY_FILE=%s", path);
	write_key_file(path, f->ring1, 0600);
	add_org(f, ORG_A);
	const char *extra[] = {file, NULL};
	start_vault_env(f, extra);
	assert_active_version(f, "1");
	assert_int_equal(put(f, ORG_A, "twilio", NULL, SECRET, NULL), 1);

	/* version 2 joins the ring as the active key */
	write_key_file(path, f->ring12, 0600);
	hangup(f, "msg=\"key ring reloaded\"", 1);
	assert_active_version(f, "2");
	assert_int_equal(put(f, ORG_A, "vapi", NULL, SECRET "-v2", NULL), 2);
	assert_get(f, ORG_A, "twilio", "default", SECRET); /* sealed with 1 */
	assert_get(f, ORG_A, "vapi", "default", SECRET "-v2");
	assert_int_equal(sql_int(f, "SELECT count(*) FROM org_credentials"
				    " WHERE key_version = 1 AND provider = 'twilio'"), 1);

	/* reloads that fail keep the ring in use, each logged once: a bad
	 * line, a file others may read, a missing file */
	snprintf(ring, sizeof(ring), "%s3 notbase64!!\nactive 3\n", f->ring12);
	write_key_file(path, ring, 0600);
	hangup(f, "msg=\"key ring not reloaded", 1);
	assert_active_version(f, "2");
	write_key_file(path, f->ring12, 0644);
	hangup(f, "msg=\"key ring not reloaded", 2);
	assert_true(file_contains(f->log, "chmod 600"));
	assert_int_equal(unlink(path), 0);
	hangup(f, "msg=\"key ring not reloaded", 3);
	assert_active_version(f, "2");
	assert_int_equal(put(f, ORG_A, "stripe", NULL, SECRET "-v2b", NULL), 2);
	assert_get(f, ORG_A, "twilio", "default", SECRET);
	assert_get(f, ORG_A, "stripe", "default", SECRET "-v2b");
	assert_false(file_contains(f->log, "notbase64"));
	assert_int_equal(th_count_in_log(f->log, "msg=\"key ring reloaded\""), 1);

	/* back to a good file, now with key 1 active again */
	snprintf(ring, sizeof(ring), "%sactive 1\n", f->ring12);
	write_key_file(path, ring, 0600);
	hangup(f, "msg=\"key ring reloaded\"", 2);
	vault_meta(f, "INFO", "vault.active_key_version", got, sizeof(got));
	assert_string_equal(got, "1");
	assert_int_equal(put(f, ORG_A, "resend", NULL, SECRET, NULL), 1);
	assert_get(f, ORG_A, "vapi", "default", SECRET "-v2");
	stop_vault(f);
	unlink(path);

	/* with VOX_VAULT_KEYS there is no file to read again: said so */
	start_vault(f, f->ring12);
	assert_active_version(f, "2");
	hangup(f, "msg=\"sighup: the key ring comes from VOX_VAULT_KEYS", 1);
	assert_active_version(f, "2");
	assert_get(f, ORG_A, "twilio", "default", SECRET);
	stop_vault(f);
	assert_logs_clean(f);
}

/* ---- rotation ------------------------------------------------------------ */

#define ROT_ORGS 3
static const char *const rot_orgs[ROT_ORGS] = {ORG_A, ORG_B, ORG_C};
static const char *const rot_providers[] = {
	"vapi", "twilio", "google_calendar", "resend", "elevenlabs", "openai",
	"deepgram", "cartesia", "outlook_calendar", "hubspot", "salesforce", "stripe",
};
#define ROT_ROWS (ROT_ORGS * (int)VOX_NELEM(rot_providers))

static void rot_secret(int i, char *out, size_t n)
{
	snprintf(out, n, "%s-%s-%d", SECRET, rot_providers[i % (int)VOX_NELEM(rot_providers)],
		 i);
}

typedef struct reader {
	natsConnection *nc;
	volatile int stop;
	int gets, failures;
	char first_failure[300];
} reader;

static void *reader_main(void *arg)
{
	reader *rd = arg;
	for (int i = 0; !rd->stop; i++) {
		int row = i % ROT_ROWS;
		char want[200], why[256] = "";
		rot_secret(row, want, sizeof(want));
		if (!get_is(rd->nc, rot_orgs[row / (int)VOX_NELEM(rot_providers)],
			    rot_providers[row % (int)VOX_NELEM(rot_providers)], "default",
			    want, why, sizeof(why))) {
			if (!rd->failures++)
				snprintf(rd->first_failure, sizeof(rd->first_failure),
					 "row %d: %s", row, why);
		}
		rd->gets++;
	}
	return NULL;
}

static void test_rotation_while_readers_read(void **state)
{
	fixture *f = *state;
	char secret[200], err[256] = "";
	for (int o = 0; o < ROT_ORGS; o++)
		add_org(f, rot_orgs[o]);
	start_vault(f, f->ring1);
	for (int i = 0; i < ROT_ROWS; i++) {
		rot_secret(i, secret, sizeof(secret));
		assert_int_equal(put(f, rot_orgs[i / (int)VOX_NELEM(rot_providers)],
				     rot_providers[i % (int)VOX_NELEM(rot_providers)], NULL,
				     secret, "seeder"), 1);
	}
	stop_vault(f);
	start_vault(f, f->ring12);
	/* the old rows still open under the new ring before rotation */
	rot_secret(0, secret, sizeof(secret));
	assert_get(f, ORG_A, "vapi", "default", secret);

	vox_keyring *kr = NULL;
	assert_int_equal(vox_keyring_parse(&kr, f->ring12, strlen(f->ring12), err,
					   sizeof(err)), VOX_OK);
	reader rd;
	memset(&rd, 0, sizeof(rd));
	rd.nc = f->nc;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader_main, &rd), 0);
	th_sleep_ms(200);
	int before = rd.gets;
	int rotated = -1;
	/* small batches, each its own transaction, so readers interleave */
	vox_status st = vox_vault_rotate(&rotated, f->db, kr, 5, NULL, NULL, err, sizeof(err));
	int during = rd.gets - before;
	th_sleep_ms(300);
	rd.stop = 1;
	pthread_join(th, NULL);
	if (st != VOX_OK)
		fprintf(stderr, "rotate: %s: %s\n", vox_status_str(st), err);
	assert_int_equal(st, VOX_OK);
	assert_int_equal(rotated, ROT_ROWS);
	if (rd.failures)
		fprintf(stderr, "%d of %d gets failed, first: %s\n", rd.failures, rd.gets,
			rd.first_failure);
	assert_int_equal(rd.failures, 0);
	assert_true(rd.gets > ROT_ROWS);
	fprintf(stderr, "rotation: %d rows, %d gets in all, %d during the rotation\n",
		rotated, rd.gets, during);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM org_credentials"
				    " WHERE key_version <> 2"), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM org_credentials"
				    " WHERE get_byte(encrypted_config, 4) <> 2"), 0);
	/* every row after the rotation, and a second rotation does nothing */
	for (int i = 0; i < ROT_ROWS; i++) {
		rot_secret(i, secret, sizeof(secret));
		assert_get(f, rot_orgs[i / (int)VOX_NELEM(rot_providers)],
			   rot_providers[i % (int)VOX_NELEM(rot_providers)], "default",
			   secret);
		assert_stored_sealed(f, rot_orgs[i / (int)VOX_NELEM(rot_providers)],
				     rot_providers[i % (int)VOX_NELEM(rot_providers)],
				     "default", secret);
	}
	assert_int_equal(vox_vault_rotate(&rotated, f->db, kr, 5, NULL, NULL, err, sizeof(err)), VOX_OK);
	assert_int_equal(rotated, 0);
	/* new puts are sealed with key 2 */
	assert_int_equal(put(f, ORG_A, "twilio", "inbound", SECRET, NULL), 2);

	/* a row that cannot be opened is skipped and reported, not fatal */
	sql_ok(f, "UPDATE org_credentials SET key_version = 1, encrypted_config ="
		  " set_byte(set_byte(encrypted_config, 4, 1), 40, 0)"
		  " WHERE org_id = '" ORG_B "' AND provider = 'vapi'");
	sql_ok(f, "UPDATE org_credentials SET key_version = 1 WHERE org_id = '" ORG_C
		  "' AND provider = 'stripe'"); /* a stale label: re-sealed */
	assert_int_equal(vox_vault_rotate(&rotated, f->db, kr, 5, NULL, NULL, err, sizeof(err)),
			 VOX_E_CRYPTO);
	assert_int_equal(rotated, 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM org_credentials"
				    " WHERE key_version <> 2"), 1);
	assert_non_null(strstr(err, "cannot be decrypted"));
	assert_null(strstr(err, "TOP-SECRET"));
	vox_keyring_free(kr);

	/* nothing secret in the audit trail or in any log */
	assert_int_equal(rows_containing(f, "audit_logs", "TOP-SECRET"), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM audit_logs WHERE action ="
				    " 'credentials.get' AND actor = 'reader'"
				    " AND details->>'key_version' IN ('1', '2')"),
			 rd.gets + 1 + ROT_ROWS);
	stop_vault(f);
	assert_logs_clean(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_list_delete_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_with_reply_key_is_sealed_to_the_requester, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_without_reply_key_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_that_do_not_open_fail_with_500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_outcome_is_audited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_configuration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sighup_reloads_the_key_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vault_is_not_dumpable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secret_left_in_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_while_readers_read, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
