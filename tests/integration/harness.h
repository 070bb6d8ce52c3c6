/*
 * harness.h - helpers for integration tests: fresh databases on the private
 * PostgreSQL cluster that `make test` started (VOX_PG_ADMIN_DSN), and the
 * paths of the built binaries. Tests that need a server never run as unit
 * tests; without the environment they fail loudly rather than skip.
 */
#ifndef VOX_TEST_HARNESS_H
#define VOX_TEST_HARNESS_H

#include "core/common.h"

#include <libpq-fe.h>

/* Create an empty database with a unique name; write its DSN to dsn. */
void th_pg_create_db(const char *prefix, char *dsn, size_t dsnlen);

/* Connect or fail the test. */
PGconn *th_pg_connect(const char *dsn);

/* Run SQL that must succeed; returns the result (caller PQclears). */
PGresult *th_pg_query(PGconn *c, const char *sql);

/* First column of the first row as an integer; fails the test on error. */
long long th_pg_int(PGconn *c, const char *sql);

/* Run a command that must succeed (no result kept). */
void th_pg_ok(PGconn *c, const char *sql);

/* Absolute path of a built binary, e.g. th_bin("voxctl"). Static buffer. */
const char *th_bin(const char *name);

/* Environment variable that must be set. */
const char *th_env(const char *name);



#include <sys/types.h>

/* Start a built binary with extra environment ("K=V" strings, NULL-ended)
 * on top of the test's own; stderr goes to logpath (or inherited when
 * NULL). Returns the pid. */
pid_t th_spawn(const char *bin, char *const extra_env[], const char *logpath);

/* Send sig and wait up to ms for the process to exit. Returns its exit
 * status as from waitpid, or -1 after SIGKILLing it on time-out. */
int th_stop(pid_t pid, int sig, long ms);

/* Sleep ms milliseconds. */
void th_sleep_ms(long ms);

#endif
