/*
 * harness.c - integration test helpers (see harness.h).
 */
#include "harness.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *th_env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0') {
		fprintf(stderr, "harness: %s is not set; run through make test\n",
			name);
		fail();
	}
	return v;
}

PGconn *th_pg_connect(const char *dsn)
{
	PGconn *c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "harness: connect: %s", PQerrorMessage(c));
		PQfinish(c);
		fail();
	}
	PGresult *r = PQexec(c, "SET client_min_messages = warning");
	PQclear(r);
	return c;
}

PGresult *th_pg_query(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		fprintf(stderr, "harness: query failed: %s\n  sql: %s\n",
			PQresultErrorMessage(r), sql);
		PQclear(r);
		fail();
	}
	return r;
}

void th_pg_ok(PGconn *c, const char *sql)
{
	PQclear(th_pg_query(c, sql));
}

long long th_pg_int(PGconn *c, const char *sql)
{
	PGresult *r = th_pg_query(c, sql);
	if (PQntuples(r) < 1 || PQgetisnull(r, 0, 0)) {
		fprintf(stderr, "harness: no value from: %s\n", sql);
		PQclear(r);
		fail();
	}
	long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

void th_pg_create_db(const char *prefix, char *dsn, size_t dsnlen)
{
	static int counter;
	char name[64], sql[128];
	const char *admin = th_env("VOX_PG_ADMIN_DSN");
	snprintf(name, sizeof(name), "%s_%ld_%d", prefix, (long)getpid(),
		 counter++);
	PGconn *c = th_pg_connect(admin);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	th_pg_ok(c, sql);
	PQfinish(c);
	snprintf(dsn, dsnlen, "%s dbname=%s", admin, name);
}

const char *th_bin(const char *name)
{
	static char path[1024];
	snprintf(path, sizeof(path), "%s/%s", VOX_TEST_BIN_DIR, name);
	return path;
}

pid_t th_spawn(const char *bin, char *const extra_env[], const char *logpath)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; extra_env && extra_env[i]; i++) {
			const char *kv = extra_env[i];
			const char *eq = strchr(kv, '=');
			if (!eq)
				_exit(126);
			char *key = vox_strndup(kv, (size_t)(eq - kv));
			setenv(key, eq + 1, 1);
			free(key);
		}
		if (logpath && !freopen(logpath, "a", stderr))
			_exit(126);
		execl(th_bin(bin), bin, (char *)NULL);
		_exit(127);
	}
	return pid;
}

int th_stop(pid_t pid, int sig, long ms)
{
	int ws = 0;
	kill(pid, sig);
	for (long waited = 0; waited <= ms; waited += 10) {
		pid_t r = waitpid(pid, &ws, WNOHANG);
		if (r == pid)
			return ws;
		th_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &ws, 0);
	return -1;
}

void th_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}
