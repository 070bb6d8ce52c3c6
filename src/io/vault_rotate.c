/*
 * vault_rotate.c - re-encrypting the vault's rows under the active key (see
 * vault_rotate.h): SQL and the envelope of core/vault.c, shared by voxctl
 * and the tests without the vault's endpoints.
 */
#include "io/vault_rotate.h"

#include "core/codec.h"
#include "io/pg.h"

#include <sodium.h>

static void rollback(PGconn *c)
{
	PQclear(PQexec(c, "ROLLBACK"));
}

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
	st = vox_vault_open(&plain, &plen, kr,
			    &ad, (const uint8_t *)PQgetvalue(r, i, 4), (size_t)PQgetlength(r, i, 4), err, errlen);
	if (st != VOX_OK)
		goto out;
	size_t bloblen = vox_vault_sealed_len(plen);
	blob = vox_malloc(bloblen);
	st = vox_vault_seal(blob, bloblen, &version, kr, &ad, plain, plen);
	if (st != VOX_OK) {
		snprintf(err, errlen, "cannot seal: %s", vox_status_str(st));
		goto out;
	}
	snprintf(ver, sizeof(ver), "%" PRIu32, version);
	vox_pg_params p;
	vox_pg_params_init(&p);
	vox_pg_params_text(&p, id);
	vox_pg_params_bytes(&p, blob, bloblen);
	vox_pg_params_text(&p, ver);
	/* updated_at is when the secret was put: a rotation keeps it */
	st = vox_pg_run_sql(c,
			    "UPDATE org_credentials SET encrypted_config = $2::bytea,"
			    " key_version = $3::int WHERE id = $1::uuid",
			    &p, NULL);
	vox_pg_params_release(&p);
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

vox_status vox_vault_rotate(int *rotated, PGconn *c, const vox_keyring *kr,
			    int batch, vox_rotate_progress_fn progress, void *ctx,
			    char *err, size_t errlen)
{
	char active[16], limit[16], msg[256];
	vox_pg_params q;
	vox_status st = VOX_OK;
	char first_bad[200] = "";
	int done = 0;
	vox_pg_params_init(&q);
	q.result_format = 1;
	vox_pg_params_text(&q, active);
	vox_pg_params_text(&q, limit);
	vox_pg_array *bad = vox_pg_params_array(&q, VOX_PG_UUID); /* skipped */
	snprintf(active, sizeof(active), "%" PRIu32, vox_keyring_active(kr));
	snprintf(limit, sizeof(limit), "%d", batch > 0 ? batch : 100);
	for (;;) {
		if ((st = vox_pg_exec(c, "BEGIN", msg, sizeof(msg))) != VOX_OK) {
			snprintf(err, errlen, "begin: %s", msg);
			break;
		}
		PGresult *r = NULL;
		st = vox_pg_run_sql(c,
			"SELECT id::text, org_id::text, provider, type, encrypted_config"
			" FROM org_credentials WHERE key_version <> $1::int"
			" AND NOT (id = ANY($3::uuid[]))"
			" ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED",
			&q, &r);
		if (st != VOX_OK) {
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
				vox_uuid id;
				if (vox_uuid_parse(&id,
						   PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0)))
					vox_pg_array_uuid(bad, &id);
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
		if ((st = vox_pg_exec(c, "COMMIT", msg, sizeof(msg))) != VOX_OK) {
			snprintf(err, errlen, "commit: %s", msg);
			break;
		}
		done += ok;
		if (progress && n > 0)
			progress(done, ctx);
		if (n == 0)
			break;
	}
	vox_pg_params_release(&q);
	*rotated = done;
	if (st == VOX_OK && first_bad[0]) {
		snprintf(err, errlen, "%s", first_bad);
		st = VOX_E_CRYPTO;
	}
	return st;
}
