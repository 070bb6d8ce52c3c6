/*
 * harness.h - helpers for integration tests: fresh databases on the private
 * PostgreSQL cluster that `make test` started (VOX_PG_ADMIN_DSN), and the
 * paths of the built binaries. Tests that need a server never run as unit
 * tests; without the environment they fail loudly rather than skip.
 */
#ifndef VOX_TEST_HARNESS_H
#define VOX_TEST_HARNESS_H

#include "core/buf.h"
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
 * NULL). Returns the pid. The process is SIGKILLed if the test process
 * ends first. */
pid_t th_spawn(const char *bin, char *const extra_env[], const char *logpath);

/* VOX_TEST_WRAP, when set, is a command line ("valgrind --log-file=...")
 * that th_spawn puts in front of the binary; VOX_TEST_ACTOR then names
 * the binary in the child's environment. th_wrapped: it is set. */
bool th_wrapped(void);

/* Send sig and wait up to ms (at least 60 s when wrapped, except SIGKILL) for the process to exit. Returns its exit
 * status as from waitpid, or -1 after SIGKILLing it on time-out. */
int th_stop(pid_t pid, int sig, long ms);

/* Sleep ms milliseconds. */
void th_sleep_ms(long ms);

#include <msgpack.h>
#include <nats/nats.h>

/* A private nats-server started by a test (for restarts). */
typedef struct th_nats {
	int port;
	pid_t pid;
	char dir[512];
	char url[64];
	bool streams;                /* apply the streams after each start */
	char *const *stream_env;     /* with these settings (borrowed) */
} th_nats;

/* Start a nats-server with JetStream on a free loopback port, its store
 * under VOX_TEST_TMP, and apply the streams EVENTS, ALERTS and DLQ as an
 * operator does (`voxctl streams apply`), with the default settings or
 * those of stream_env ("VOX_STREAM_REPLICAS=..." strings, NULL-ended;
 * it must outlive n). The actors only check the streams. Restarting
 * keeps port and store, and applies again with the same settings. */
void th_nats_start(th_nats *n);
void th_nats_start_with(th_nats *n, char *const stream_env[]);
/* The same without any stream, for the tests of what happens then. */
void th_nats_start_empty(th_nats *n);
void th_nats_restart(th_nats *n);
void th_nats_stop(th_nats *n);

/* Apply the streams on the server at url (no credentials) with the
 * settings of stream_env (may be NULL) over the test's environment;
 * retries for up to 10 s while JetStream is not ready; fails the test
 * otherwise. */
void th_streams_apply(const char *url, char *const stream_env[]);

/* Stop (fast) and start again the shared PostgreSQL cluster. */
void th_pg_stop(void);
void th_pg_start(void);

/* Poll sql (an integer query) until it returns want or ms pass; returns
 * the last value seen. Reconnects as needed. */
long long th_wait_int(const char *dsn, const char *sql, long long want,
		      long ms);

/* Messages the durable consumer has not delivered plus those delivered
 * but not acknowledged; -1 if it cannot be read. */
long long th_consumer_outstanding(jsCtx *js, const char *stream,
				  const char *durable);

/* Publish raw bytes to JetStream with a Nats-Msg-Id; fails the test on
 * error. */
void th_publish_raw(jsCtx *js, const char *subject, const void *data,
		    size_t len, const char *msgid);

/* Count messages in a stream (optionally only on one subject filter). */
long long th_stream_count(jsCtx *js, const char *stream);

/* Create a database with a unique name and apply every migration to it;
 * its DSN goes to dsn. */
void th_pg_migrated_db(const char *prefix, char *dsn, size_t dsnlen);

/* Integer / command SQL with printf-style formatting (test use: the
 * values formatted in are the test's own). */
long long th_pg_intf(PGconn *c, const char *fmt, ...) VOX_PRINTF(2, 3);
void th_pg_okf(PGconn *c, const char *fmt, ...) VOX_PRINTF(2, 3);

/* A NATS connection that reconnects forever. */
void th_nats_connect(const char *url, natsConnection **nc);

/* A NATS connection that reconnects forever, and its JetStream context
 * with the options given (NULL for the defaults). */
void th_js_connect(const char *url, jsOptions *jo, natsConnection **nc,
		   jsCtx **js);

/* Lines of the file at path that contain needle (0 if it is missing). */
int th_count_in_log(const char *path, const char *needle);

/* Occurrences of needle in s (not overlapping). */
int th_count_str(const char *s, const char *needle);

/* Print the last max bytes of the file at path on stderr (a log, when a
 * test fails: the run's directory is removed afterwards). */
void th_print_tail(const char *path, size_t max);

/* Wait up to tenths x 100 ms until the actor *pid logged msg="started"
 * (or "msg":"started" in JSON);
 * fails the test (and zeroes *pid) if it exits first or never starts,
 * after printing the end of its log. */
void th_wait_started(pid_t *pid, const char *name, const char *log, int tenths);

/* splitmix64: the seeded generator of the randomised tests. */
uint64_t th_splitmix64(uint64_t *state);

/* True while the child pid runs (reaps it once it has exited). */
bool th_alive(pid_t pid);

/* ---- running a command line ---------------------------------------------- */

/* What a finished command printed and how it exited. */
typedef struct th_run_result {
	int code; /* exit code; 128 + signal if killed; -1 on timeout */
	vox_buf out;
	vox_buf err;
} th_run_result;

/*
 * Run build/bin/<bin> with argv (NULL-ended, at most 63 words, argv[0] is
 * the binary's name), extra environment ("K=V", NULL-ended, may be NULL) and stdin_data
 * (NULL: /dev/null), capturing stdout and stderr. Killed after timeout_ms.
 * Release with th_run_release.
 */
void th_run(const char *bin, const char *const argv[], char *const extra_env[],
	    const char *stdin_data, long timeout_ms, th_run_result *r);
void th_run_release(th_run_result *r);

/* r exited with code and, when in_stderr is not NULL, its stderr contains
 * it; fails the test (showing both outputs) otherwise. */
void th_run_expect(const th_run_result *r, int code, const char *in_stderr);

/* ---- request-reply (msgpack bodies, ADR-32 errors) ---------------------- */

/* A request body under construction: th_body_init with the number of
 * keys, then one th_body_* per key (or msgpack_pack_* on pk directly). */
typedef struct th_body {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} th_body;

void th_body_init(th_body *b, uint32_t nkeys);
void th_body_key(th_body *b, const char *k);
void th_body_str(th_body *b, const char *k, const char *v);
void th_body_bin(th_body *b, const char *k, const void *v, size_t n);
void th_body_int(th_body *b, const char *k, int64_t v);

/* A reply: the error code and text ("" on success) and, on success, the
 * decoded body (which must be a map). */
typedef struct th_reply {
	char code[16];   /* Nats-Service-Error-Code, "" on success */
	char text[200];  /* Nats-Service-Error */
	char reason[48]; /* Vox-Error-Reason */
	char field[48];  /* Vox-Error-Field, "" when about the whole request */
	natsMsg *msg;
	msgpack_unpacked u;
	bool decoded;
} th_reply;

void th_reply_free(th_reply *r);

/* Request subject with a raw body and, when hdr_value is not NULL, the
 * header hdr_name; 5 s timeout. NATS_ERR for a success reply that is not
 * a msgpack map. */
natsStatus th_request_raw(natsConnection *nc, const char *subject,
			  const void *data, size_t len, const char *hdr_name,
			  const char *hdr_value, th_reply *out);

/* The value of key k in a decoded map, or a nil object when absent. */
const msgpack_object *th_get_key(const msgpack_object *map, const char *k);
bool th_has_key(const msgpack_object *map, const char *k);

/* r is an error reply with this code, a text, a stable reason, a field
 * that the text names first (when there is one) and an empty body; frees
 * r. */
void th_expect_error(th_reply *r, const char *code);

/*
 * credentials.get on subject as every client must ask it: {provider, type
 * (when not NULL), reply_key: a fresh X25519 public key}. A success reply
 * must be exactly {sealed: ...}: it is opened with the one-time secret
 * key into config (appended; the caller wipes and releases it). out gets
 * the reply either way (th_reply_free). NATS_ERR for a success reply
 * that is not a sealed box for that key.
 */
natsStatus th_cred_get(natsConnection *nc, const char *subject,
		       const char *provider, const char *type, th_reply *out,
		       vox_buf *config);

/* ---- secrets and ports ----------------------------------------------- */

/* Record a secret the test uses (a password, a key, a credential config):
 * one line appended to $VOX_TEST_TMP/secrets.list. After the integration
 * tests, scripts/check_secrets.sh fails if any log under VOX_TEST_TMP
 * contains one of them. Empty strings and strings with a newline are
 * refused (they could not be checked). */
void th_secret(const char *s);

/* A free loopback TCP port, and whether something listens on one. */
int th_free_port(void);
bool th_port_open(int port);

#endif
