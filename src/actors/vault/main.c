/*
 * vox-vault - encrypted provider credentials for each organization:
 * answers credentials.put/get/list/delete.<org>. Wiring only: the actor
 * shell (io/actor.c) owns the lifecycle, store.c the SQL and the envelope,
 * core/vault.c the cryptography. Here: the key ring's loading, its reload
 * on SIGHUP, and its active version in the $SRV metadata (what `voxctl
 * keys rotate` checks before it re-seals anything).
 */
#include "core/common.h"

#include <sodium.h>
#include <sys/prctl.h>

#include "actors/vault/vault_actor.h"
#include "io/actor.h"
#include "io/keyfile.h"
#include "io/log.h"

#define VC(f) offsetof(vox_vault_config, f)

static const vox_cfg_var vault_vars[] = {
	{"VOX_VAULT_KEYS", VOX_CFG_SECRET, "", 0, 0, NULL, VC(keys),
	 "the key ring itself: lines \"<version> <base64 key>\", optionally"
	 " \"active <version>\" (set this or VOX_VAULT_KEY_FILE)"},
	{"VOX_VAULT_KEY_FILE", VOX_CFG_STR, "", 0, 0, NULL, VC(key_file),
	 "path of a key ring file, mode 0600 or stricter (set this or"
	 " VOX_VAULT_KEYS)"},
};

static vox_vault_ctx vault;

/* Swap in a new ring; the old one is wiped and freed once no endpoint
 * holds it. Returns the previous active version (0 when there was none). */
static uint32_t ring_replace(vox_vault_ctx *vc, vox_keyring *ring)
{
	pthread_rwlock_wrlock(&vc->ring_lock);
	vox_keyring *old = vc->ring;
	vc->ring = ring;
	pthread_rwlock_unlock(&vc->ring_lock);
	uint32_t was = old ? vox_keyring_active(old) : 0;
	vox_keyring_free(old);
	return was;
}

static vox_status setup(vox_actor *a, void *ctx)
{
	vox_vault_ctx *vc = ctx;
	char err[256] = "";
	vox_status st;
	vox_keyring *ring = NULL;
	/* as many connections as requests can run at once: one per
	 * endpoint (each has one delivery thread) */
	vc->pool = vox_pgpool_new(vox_actor_cfg(a)->pg_dsn, VOX_VAULT_EP_COUNT,
				  VAULT_WAIT_MS, NULL, NULL);
	vc->ring_from_env = vc->cfg.keys[0] != '\0';
	if (vc->ring_from_env) {
		/* the text stays in the environment: wipe it once parsed */
		size_t n = strlen(vc->cfg.keys);
		st = vox_keyring_parse(&ring, vc->cfg.keys, n, err, sizeof(err));
		sodium_memzero((void *)(uintptr_t)vc->cfg.keys, n);
	} else {
		st = vox_keyfile_load(&ring, vc->cfg.key_file, err, sizeof(err));
	}
	if (st != VOX_OK) {
		vox_error("msg=\"cannot load the key ring\" source=%s error=\"%s\"",
			  vc->ring_from_env || !vc->cfg.key_file[0] ? "VOX_VAULT_KEYS"
								    : "VOX_VAULT_KEY_FILE",
			  err);
		return st;
	}
	vox_info("msg=\"key ring loaded\" keys=%zu active_version=%" PRIu32,
		 vox_keyring_count(ring), vox_keyring_active(ring));
	(void)ring_replace(vc, ring);
	static const struct {
		const char *name, *subject;
		vox_endpoint_fn fn;
	} eps[] = {
		{"put", "credentials.put.*", vox_vault_put},
		{"get", "credentials.get.*", vox_vault_get},
		{"list", "credentials.list.*", vox_vault_list},
		{"delete", "credentials.delete.*", vox_vault_delete},
	};
	for (size_t i = 0; i < VOX_NELEM(eps); i++) {
		st = vox_service_add_endpoint(vox_actor_service(a), eps[i].name,
					      eps[i].subject, eps[i].fn, vc);
		if (st != VOX_OK)
			return st;
	}
	return VOX_OK;
}

/*
 * SIGHUP: read VOX_VAULT_KEY_FILE again. A ring that does not load (the
 * file unreadable, a bad line, a mode that lets others read it) changes
 * nothing: the ring in use stays, and the error is logged once. Rows
 * sealed with a version the new ring lacks no longer open, which is the
 * operator's call (`voxctl keys status` shows what each version seals).
 */
static void reload(vox_actor *a, void *ctx)
{
	vox_vault_ctx *vc = ctx;
	char err[256] = "";
	vox_keyring *ring = NULL;
	VOX_UNUSED(a);
	pthread_rwlock_rdlock(&vc->ring_lock);
	uint32_t active = vc->ring ? vox_keyring_active(vc->ring) : 0;
	pthread_rwlock_unlock(&vc->ring_lock);
	if (vc->ring_from_env) {
		vox_info("msg=\"sighup: the key ring comes from VOX_VAULT_KEYS, nothing"
			 " to reload (restart to change it)\" active_version=%" PRIu32,
			 active);
		return;
	}
	if (vox_keyfile_load(&ring, vc->cfg.key_file, err, sizeof(err)) != VOX_OK) {
		vox_error("msg=\"key ring not reloaded, the loaded ring stays in use\""
			  " source=VOX_VAULT_KEY_FILE active_version=%" PRIu32
			  " error=\"%s\"", active, err);
		return;
	}
	size_t n = vox_keyring_count(ring);
	uint32_t now = vox_keyring_active(ring);
	uint32_t was = ring_replace(vc, ring);
	vox_info("msg=\"key ring reloaded\" source=VOX_VAULT_KEY_FILE keys=%zu"
		 " active_version=%" PRIu32 " previous_active_version=%" PRIu32,
		 n, now, was);
}

/* $SRV metadata: the version new credentials are sealed with. */
static void metadata(vox_buf *members, void *ctx)
{
	vox_vault_ctx *vc = ctx;
	pthread_rwlock_rdlock(&vc->ring_lock);
	if (vc->ring)
		vox_buf_printf(members, "\"vault.active_key_version\":\"%" PRIu32 "\"",
			       vox_keyring_active(vc->ring));
	pthread_rwlock_unlock(&vc->ring_lock);
}

static void teardown(vox_actor *a, void *ctx)
{
	vox_vault_ctx *vc = ctx;
	/* drain the endpoints first: no request may run past the ring */
	vox_service_stop(vox_actor_service(a));
	vox_pgpool_free(vc->pool);
	vc->pool = NULL;
	(void)ring_replace(vc, NULL);
}

/* Exactly one of the two key sources; checked before the shell starts so
 * that a mistake is a configuration error (exit 2). */
static bool key_source_ok(void)
{
	const char *k = getenv("VOX_VAULT_KEYS");
	const char *f = getenv("VOX_VAULT_KEY_FILE");
	bool has_k = k && *k, has_f = f && *f;
	if (has_k != has_f)
		return true;
	fprintf(stderr, "vox-vault: bad configuration:\n"
			"VOX_VAULT_KEYS, VOX_VAULT_KEY_FILE: set exactly one of the two%s\n",
		has_k ? " (both are set)" : "");
	return false;
}

int main(int argc, char **argv)
{
	static const vox_actor_def def = {
		.name = "vox-vault",
		.description = "Encrypted provider credentials for each organization",
		.vars = vault_vars,
		.nvars = VOX_NELEM(vault_vars),
		.cfg = &vault.cfg,
		.setup = setup,
		.teardown = teardown,
		.reload = reload,
		.metadata = metadata,
		.ctx = &vault,
	};
	/* Master keys and plaintext credentials live in this process: no
	 * core file may hold them, and no process of the same user may
	 * ptrace it or read /proc/<pid>/mem. First, before any key is read. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		fprintf(stderr, "vox-vault: cannot turn core dumps off (prctl"
				" PR_SET_DUMPABLE): %s\n", strerror(errno));
		return 1;
	}
	if (argc == 1 && !key_source_ok())
		return 2;
	if (sodium_init() < 0) {
		fprintf(stderr, "vox-vault: libsodium cannot be initialised\n");
		return 1;
	}
	vox_vault_ctx_init(&vault);
	int code = vox_actor_main(&def, argc, argv);
	(void)ring_replace(&vault, NULL);
	vox_vault_ctx_release(&vault);
	return code;
}
