/*
 * Integration: the files of deploy/ that the scale-out test does not start
 * are still checked by the tools that will read them:
 *   - every nats-server config loads (`nats-server -t`), cluster.conf with
 *     the environment it documents; a broken one is refused;
 *   - deploy/postgres/vox.conf is accepted by this PostgreSQL (`postgres -C`
 *     parses every setting and checks its range, in a scratch data
 *     directory), and tables.sql applies to a migrated database;
 *   - every systemd unit passes `systemd-analyze verify` with no warning
 *     (the binaries' paths pointed at build/bin);
 *   - vox-vault's unit allows no core file (LimitCORE=0).
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char tmpdir[512];

/* Run a shell command; its output goes to DIR/out.txt, shown on failure.
 * Returns the exit code. */
static int sh(const char *fmt, ...) VOX_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
	char cmd[4096], full[5000];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "( %s ) >%s/out.txt 2>&1", cmd, tmpdir);
	int ws = system(full);
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
}

static void show_output(void)
{
	char path[600], line[1024];
	snprintf(path, sizeof(path), "%s/out.txt", tmpdir);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return;
	while (fgets(line, sizeof(line), fp))
		fprintf(stderr, "  | %s", line);
	fclose(fp);
}

static void expect_rc(int rc, int want, const char *what)
{
	if (rc != want) {
		fprintf(stderr, "%s: exit %d, want %d\n", what, rc, want);
		show_output();
	}
	assert_int_equal(rc, want);
}

static long out_size(void)
{
	char path[600];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/out.txt", tmpdir);
	return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static int setup(void **state)
{
	VOX_UNUSED(state);
	snprintf(tmpdir, sizeof(tmpdir), "%s/deploy-%ld", th_env("VOX_TEST_TMP"),
		 (long)getpid());
	mkdir(tmpdir, 0755);
	return 0;
}

/* What cluster.conf and accounts.conf read from the environment. */
#define CLUSTER_ENV \
	"VOX_NATS_NODE=n1 VOX_NATS_HOST=127.0.0.1 VOX_NATS_PORT=4222" \
	" VOX_NATS_CLUSTER_HOST=127.0.0.1 VOX_NATS_CLUSTER_PORT=6222" \
	" VOX_NATS_ROUTES='[nats-route://route:r@127.0.0.1:6223]'" \
	" VOX_NATS_ROUTE_PASSWORD=r VOX_NATS_STORE=/nonexistent" \
	" VOX_NATS_ADMIN_PASSWORD=a VOX_NATS_CALLS_PASSWORD=a" \
	" VOX_NATS_BILLING_PASSWORD=a VOX_NATS_LEADS_PASSWORD=a" \
	" VOX_NATS_VAULT_PASSWORD=a VOX_NATS_QUERY_PASSWORD=a" \
	" VOX_NATS_TELEPHONY_PASSWORD=a VOX_NATS_PAYMENTS_PASSWORD=a" \
	" VOX_NATS_SCORER_PASSWORD=a VOX_NATS_ALERTS_PASSWORD=a" \
	" VOX_NATS_INTERNAL_PASSWORD=a"

static void test_nats_configs_load(void **state)
{
	VOX_UNUSED(state);
	static const char *plain[] = {"single.conf", "partition.conf"};
	for (size_t i = 0; i < VOX_NELEM(plain); i++)
		expect_rc(sh("nats-server -t -c %s/deploy/nats/%s", VOX_SOURCE_DIR,
			     plain[i]), 0, plain[i]);
	expect_rc(sh("env " CLUSTER_ENV " nats-server -t -c %s/deploy/nats/cluster.conf",
		     VOX_SOURCE_DIR), 0, "cluster.conf");
	/* the check is real: without a variable it documents, refused */
	assert_int_not_equal(sh("env " CLUSTER_ENV " -u VOX_NATS_ROUTE_PASSWORD"
				" nats-server -t -c %s/deploy/nats/cluster.conf",
				VOX_SOURCE_DIR), 0);
}

static void test_postgres_settings_accepted(void **state)
{
	VOX_UNUSED(state);
	const char *bin = th_env("VOX_PG_BIN");
	const char *as = getuid() == 0 ? "runuser -u postgres --" : "";
	char data[600];
	snprintf(data, sizeof(data), "%s/pgdata", tmpdir);
	if (getuid() == 0)
		expect_rc(sh("chown postgres: %s", tmpdir), 0, "chown");
	expect_rc(sh("%s %s/initdb -D %s -A trust -U vox", as, bin, data), 0, "initdb");
	expect_rc(sh("%s cp %s/deploy/postgres/vox.conf %s/vox.conf && %s sh -c"
		     " \"echo \\\"include 'vox.conf'\\\" >> %s/postgresql.conf\"",
		     as, VOX_SOURCE_DIR, data, as, data), 0, "include vox.conf");
	/* postgres -C parses the whole configuration, checks every value */
	expect_rc(sh("%s %s/postgres -D %s -C max_wal_size | grep -qx 8192", as, bin,
		     data), 0, "postgres -C max_wal_size");
	expect_rc(sh("%s %s/postgres -D %s -C synchronous_commit | grep -qx on", as,
		     bin, data), 0, "postgres -C synchronous_commit");
	/* and refuses a value out of range */
	expect_rc(sh("%s sh -c \"echo commit_delay = 2000000 >> %s/vox.conf\"", as, data),
		  0, "append");
	assert_int_not_equal(sh("%s %s/postgres -D %s -C commit_delay", as, bin, data), 0);

	char dsn[512];
	th_pg_migrated_db("deploy", dsn, sizeof(dsn));
	PGconn *c = th_pg_connect(dsn);
	char path[1024];
	snprintf(path, sizeof(path), "%s/deploy/postgres/tables.sql", VOX_SOURCE_DIR);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	static char sql[16384];
	size_t n = fread(sql, 1, sizeof(sql) - 1, fp);
	fclose(fp);
	sql[n] = '\0';
	th_pg_ok(c, sql);
	th_pg_ok(c, sql); /* safe to run again */
	assert_int_equal(th_pg_int(c, "SELECT count(*) FROM pg_class WHERE relname ="
				      " 'organizations' AND 'fillfactor=70' = ANY (reloptions)"), 1);
	PQfinish(c);
}

static void test_systemd_units_verify(void **state)
{
	VOX_UNUSED(state);
	if (sh("command -v systemd-analyze") != 0) {
		fprintf(stderr, "systemd-analyze is not installed: units not verified\n");
		fail();
	}
	/* copies with the binaries in build/bin and a concrete instance name */
	expect_rc(sh("mkdir -p %s/units && cd %s/deploy/systemd && for f in *; do"
		     " g=$(echo \"$f\" | sed 's/@\\./@1./');"
		     " sed 's#/usr/bin/\\(vox[a-z-]*\\)#%s/\\1#' \"$f\" > %s/units/\"$g\"; done",
		     tmpdir, VOX_SOURCE_DIR, VOX_TEST_BIN_DIR, tmpdir), 0, "copy units");
	expect_rc(sh("cd %s/units && ls | wc -l | grep -qx 10", tmpdir), 0, "ten units");
	/* systemd-analyze exits 0 on warnings too: any output is a failure */
	expect_rc(sh("cd %s/units && for u in *; do"
		     " SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no ./$u || exit 1;"
		     " done", tmpdir), 0, "systemd-analyze verify");
	if (out_size() != 0)
		show_output();
	assert_int_equal(out_size(), 0);
	/* the check is real: a bad restart policy is reported */
	expect_rc(sh("cd %s/units && sed -i 's/^Restart=always/Restart=sometimes/'"
		     " vox-calls@1.service && systemd-analyze verify --man=no"
		     " ./vox-calls@1.service", tmpdir), 0, "verify a broken unit");
	assert_true(out_size() > 0);
}

/* vox-vault holds master keys and plaintext credentials: its unit sets
 * the core size limit to 0 (the process also makes itself non-dumpable;
 * test_vault checks that). */
static void test_vault_unit_allows_no_core(void **state)
{
	VOX_UNUSED(state);
	expect_rc(sh("grep -cx 'LimitCORE=0' %s/deploy/systemd/vox-vault@.service",
		     VOX_SOURCE_DIR), 0, "LimitCORE=0 in vox-vault@.service");
	expect_rc(sh("grep -c '^LimitCORE=' %s/deploy/systemd/vox-vault@.service"
		     " | grep -qx 1", VOX_SOURCE_DIR), 0, "one LimitCORE line");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vault_unit_allows_no_core),
		cmocka_unit_test(test_nats_configs_load),
		cmocka_unit_test(test_postgres_settings_accepted),
		cmocka_unit_test(test_systemd_units_verify),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
