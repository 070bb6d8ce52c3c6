/*
 * harness.c - integration test helpers (see harness.h).
 */
#include "harness.h"

#include "io/migrate.h"
#include "io/streams.h"

#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* dies with the test, also when a failed assertion skipped
		 * the th_stop meant for it */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(125);
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
		const char *wrap = getenv("VOX_TEST_WRAP");
		if (wrap && *wrap) {
			/* "valgrind --opt ... " words, then the binary; the
			 * wrapper may name its own log after VOX_TEST_ACTOR
			 * (valgrind: --log-file=DIR/%q{VOX_TEST_ACTOR}-%p.log) */
			char *words = vox_strndup(wrap, strlen(wrap));
			char *argv[34];
			int n = 0;
			char *save = NULL;
			for (char *w = strtok_r(words, " ", &save); w && n < 32;
			     w = strtok_r(NULL, " ", &save))
				argv[n++] = w;
			char *path = vox_strndup(th_bin(bin), strlen(th_bin(bin)));
			argv[n++] = path;
			argv[n] = NULL;
			setenv("VOX_TEST_ACTOR", bin, 1);
			execvp(argv[0], argv);
			_exit(127);
		}
		execl(th_bin(bin), bin, (char *)NULL);
		_exit(127);
	}
	return pid;
}

bool th_wrapped(void)
{
	const char *wrap = getenv("VOX_TEST_WRAP");
	return wrap && *wrap;
}

int th_stop(pid_t pid, int sig, long ms)
{
	int ws = 0;
	/* a wrapped process (valgrind) needs far longer to stop and to
	 * write its report */
	if (th_wrapped() && sig != SIGKILL && ms < 60000)
		ms = 60000;
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

int th_free_port(void)
{
	/* bind port 0, read the port, close: the server binds it right after */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

bool th_port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void nats_spawn(th_nats *n)
{
	char port[16], store[600], log[600];
	snprintf(port, sizeof(port), "%d", n->port);
	snprintf(store, sizeof(store), "%s/store", n->dir);
	snprintf(log, sizeof(log), "%s/nats.log", n->dir);
	n->pid = fork();
	assert_true(n->pid >= 0);
	if (n->pid == 0) {
		execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port,
		       "-js", "-sd", store, "-l", log, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !th_port_open(n->port); i++)
		th_sleep_ms(100);
	assert_true(th_port_open(n->port));
}

typedef struct env_overlay {
	char *const *env;
} env_overlay;

/* K=V from the overlay first, then the process environment. */
static const char *overlay_get(const char *name, void *ctx)
{
	char *const *env = ((const env_overlay *)ctx)->env;
	size_t len = strlen(name);
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
			return env[i] + len + 1;
	return getenv(name);
}

static void ignore_applied(const char *stream, vox_stream_action action,
			   const vox_stream_diff *d, size_t n, void *ctx)
{
	VOX_UNUSED(stream);
	VOX_UNUSED(action);
	VOX_UNUSED(d);
	VOX_UNUSED(n);
	VOX_UNUSED(ctx);
}

void th_streams_apply(const char *url, char *const stream_env[])
{
	vox_runtime_config c;
	vox_buf errors;
	char err[512] = "";
	memset(&c, 0, sizeof(c));
	vox_buf_init(&errors);
	env_overlay o = {stream_env};
	vox_status st = vox_streams_config_parse(&c, overlay_get, &o, &errors);
	if (st != VOX_OK)
		fail_msg("harness: stream settings: %s", errors.data);
	vox_buf_release(&errors);
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	th_js_connect(url, NULL, &nc, &js);
	for (int i = 0; i < 100; i++) {
		st = vox_streams_apply(js, &c, false, ignore_applied, NULL, err,
				       sizeof(err));
		if (!vox_status_is_transient(st))
			break;
		th_sleep_ms(100);
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	if (st != VOX_OK)
		fail_msg("harness: streams apply: %s", err);
}

static void nats_new(th_nats *n)
{
	static int counter;
	memset(n, 0, sizeof(*n));
	snprintf(n->dir, sizeof(n->dir), "%s/nats-%ld-%d",
		 th_env("VOX_TEST_TMP"), (long)getpid(), counter++);
	mkdir(n->dir, 0755);
	n->port = th_free_port();
	snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%d", n->port);
	nats_spawn(n);
}

void th_nats_start_with(th_nats *n, char *const stream_env[])
{
	nats_new(n);
	n->streams = true;
	n->stream_env = stream_env;
	th_streams_apply(n->url, stream_env);
}

void th_nats_start(th_nats *n)
{
	th_nats_start_with(n, NULL);
}

void th_nats_start_empty(th_nats *n)
{
	nats_new(n);
}

void th_nats_stop(th_nats *n)
{
	if (n->pid > 0)
		th_stop(n->pid, SIGTERM, 10000);
	n->pid = 0;
}

void th_nats_restart(th_nats *n)
{
	th_nats_stop(n);
	nats_spawn(n);
	/* the store keeps them; applying again is what an operator's boot
	 * unit does, and a no-op here */
	if (n->streams)
		th_streams_apply(n->url, n->stream_env);
}

static void run_shell(const char *cmd)
{
	int ws = system(cmd);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		fprintf(stderr, "harness: command failed: %s\n", cmd);
		fail();
	}
}

void th_pg_stop(void)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
		 "%s %s/pg_ctl -D %s -m fast -w stop >/dev/null",
		 getuid() == 0 ? "runuser -u postgres --" : "",
		 th_env("VOX_PG_BIN"), th_env("VOX_PG_DATA"));
	run_shell(cmd);
}

void th_pg_start(void)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "%s/scripts/servers.sh start %s pg >/dev/null",
		 VOX_SOURCE_DIR, th_env("VOX_TEST_TMP"));
	run_shell(cmd);
}

long long th_wait_int(const char *dsn, const char *sql, long long want, long ms)
{
	long long v = -1;
	for (long waited = 0;; waited += 100) {
		PGconn *c = PQconnectdb(dsn);
		if (PQstatus(c) == CONNECTION_OK) {
			PGresult *r = PQexec(c, sql);
			if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
				v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
			PQclear(r);
		}
		PQfinish(c);
		if (v == want || waited >= ms)
			return v;
		th_sleep_ms(100);
	}
}

long long th_consumer_outstanding(jsCtx *js, const char *stream,
				  const char *durable)
{
	jsConsumerInfo *ci = NULL;
	if (js_GetConsumerInfo(&ci, js, stream, durable, NULL, NULL) != NATS_OK)
		return -1;
	long long v = (long long)ci->NumPending + (long long)ci->NumAckPending;
	jsConsumerInfo_Destroy(ci);
	return v;
}

void th_publish_raw(jsCtx *js, const char *subject, const void *data,
		    size_t len, const char *msgid)
{
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	assert_int_equal(natsMsg_Create(&m, subject, NULL, data, (int)len), NATS_OK);
	if (msgid)
		assert_int_equal(natsMsgHeader_Set(m, "Nats-Msg-Id", msgid), NATS_OK);
	natsStatus s = js_PublishMsg(&pa, js, m, NULL, NULL);
	if (s != NATS_OK)
		fprintf(stderr, "harness: publish to %s: %s\n", subject,
			natsStatus_GetText(s));
	assert_int_equal(s, NATS_OK);
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(m);
}

long long th_stream_count(jsCtx *js, const char *stream)
{
	jsStreamInfo *si = NULL;
	if (js_GetStreamInfo(&si, js, stream, NULL, NULL) != NATS_OK)
		return -1;
	long long v = (long long)si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return v;
}

void th_pg_migrated_db(const char *prefix, char *dsn, size_t dsnlen)
{
	vox_buf err;
	int applied = 0;
	th_pg_create_db(prefix, dsn, dsnlen);
	PGconn *c = th_pg_connect(dsn);
	vox_buf_init(&err);
	vox_status st = vox_migrate_apply(c, vox_migrations, vox_migrations_count,
					  &applied, &err);
	if (st != VOX_OK)
		fprintf(stderr, "harness: migrate: %s\n", err.data);
	assert_int_equal(st, VOX_OK);
	vox_buf_release(&err);
	PQfinish(c);
}

long long th_pg_intf(PGconn *c, const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return th_pg_int(c, sql);
}

void th_pg_okf(PGconn *c, const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	th_pg_ok(c, sql);
}

void th_nats_connect(const char *url, natsConnection **nc)
{
	natsOptions *no = NULL;
	assert_int_equal(natsOptions_Create(&no), NATS_OK);
	natsOptions_SetURL(no, url);
	natsOptions_SetMaxReconnect(no, -1);
	natsOptions_SetReconnectWait(no, 100);
	assert_int_equal(natsConnection_Connect(nc, no), NATS_OK);
	natsOptions_Destroy(no);
}

void th_js_connect(const char *url, jsOptions *jo, natsConnection **nc,
		   jsCtx **js)
{
	th_nats_connect(url, nc);
	assert_int_equal(natsConnection_JetStream(js, *nc, jo), NATS_OK);
}

int th_count_in_log(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "r");
	char line[4096];
	int n = 0;
	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, needle))
			n++;
	fclose(fp);
	return n;
}

int th_count_str(const char *s, const char *needle)
{
	int n = 0;
	size_t len = strlen(needle);
	for (const char *p = s; len && (p = strstr(p, needle)) != NULL; p += len)
		n++;
	return n;
}

bool th_alive(pid_t pid)
{
	int ws;
	return pid > 0 && waitpid(pid, &ws, WNOHANG) == 0;
}

/* ---- request-reply ------------------------------------------------------- */

void th_body_init(th_body *b, uint32_t nkeys)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&b->pk, nkeys);
}

void th_body_key(th_body *b, const char *k)
{
	msgpack_pack_str(&b->pk, strlen(k));
	msgpack_pack_str_body(&b->pk, k, strlen(k));
}

void th_body_str(th_body *b, const char *k, const char *v)
{
	th_body_key(b, k);
	msgpack_pack_str(&b->pk, strlen(v));
	msgpack_pack_str_body(&b->pk, v, strlen(v));
}

void th_body_bin(th_body *b, const char *k, const void *v, size_t n)
{
	th_body_key(b, k);
	msgpack_pack_bin(&b->pk, n);
	msgpack_pack_bin_body(&b->pk, v, n);
}

void th_body_int(th_body *b, const char *k, int64_t v)
{
	th_body_key(b, k);
	msgpack_pack_int64(&b->pk, v);
}

void th_reply_free(th_reply *r)
{
	if (r->decoded)
		msgpack_unpacked_destroy(&r->u);
	natsMsg_Destroy(r->msg);
	memset(r, 0, sizeof(*r));
}

static const char *header(natsMsg *m, const char *key)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v)
		return "";
	return v;
}

natsStatus th_request_raw(natsConnection *nc, const char *subject,
			  const void *data, size_t len, const char *hdr_name,
			  const char *hdr_value, th_reply *out)
{
	natsMsg *m = NULL;
	memset(out, 0, sizeof(*out));
	natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
	if (s == NATS_OK && hdr_value)
		s = natsMsgHeader_Set(m, hdr_name, hdr_value);
	if (s == NATS_OK)
		s = natsConnection_RequestMsg(&out->msg, nc, m, 5000);
	natsMsg_Destroy(m);
	if (s != NATS_OK)
		return s;
	snprintf(out->code, sizeof(out->code), "%s",
		 header(out->msg, "Nats-Service-Error-Code"));
	snprintf(out->text, sizeof(out->text), "%s",
		 header(out->msg, "Nats-Service-Error"));
	snprintf(out->reason, sizeof(out->reason), "%s",
		 header(out->msg, "Vox-Error-Reason"));
	snprintf(out->field, sizeof(out->field), "%s",
		 header(out->msg, "Vox-Error-Field"));
	if (!out->code[0]) {
		size_t off = 0;
		msgpack_unpacked_init(&out->u);
		out->decoded = true;
		if (msgpack_unpack_next(&out->u, natsMsg_GetData(out->msg),
					(size_t)natsMsg_GetDataLength(out->msg), &off) !=
			    MSGPACK_UNPACK_SUCCESS ||
		    out->u.data.type != MSGPACK_OBJECT_MAP)
			return NATS_ERR;
	}
	return NATS_OK;
}

static const msgpack_object nil_object = {.type = MSGPACK_OBJECT_NIL};

const msgpack_object *th_get_key(const msgpack_object *map, const char *k)
{
	if (map->type != MSGPACK_OBJECT_MAP)
		return &nil_object;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == strlen(k) &&
		    memcmp(kv->key.via.str.ptr, k, strlen(k)) == 0)
			return &kv->val;
	}
	return &nil_object;
}

bool th_has_key(const msgpack_object *map, const char *k)
{
	return th_get_key(map, k) != &nil_object;
}

void th_expect_error(th_reply *r, const char *code)
{
	if (strcmp(r->code, code) != 0)
		fprintf(stderr, "want error %s, got '%s' (%s)\n", code, r->code,
			r->text);
	assert_string_equal(r->code, code);
	assert_true(r->text[0] != '\0');
	assert_true(r->reason[0] != '\0');
	if (r->field[0]) {
		size_t n = strlen(r->field);
		assert_memory_equal(r->text, r->field, n);
		assert_memory_equal(r->text + n, ": ", 2);
	}
	assert_int_equal(natsMsg_GetDataLength(r->msg), 0);
	th_reply_free(r);
}

natsStatus th_cred_get(natsConnection *nc, const char *subject,
		       const char *provider, const char *type, th_reply *out,
		       vox_buf *config)
{
	uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	th_body b;
	crypto_box_keypair(pk, sk);
	th_body_init(&b, type ? 3 : 2);
	th_body_str(&b, "provider", provider);
	if (type)
		th_body_str(&b, "type", type);
	th_body_bin(&b, "reply_key", pk, sizeof(pk));
	natsStatus s = th_request_raw(nc, subject, b.sb.data, b.sb.size, NULL, NULL,
				      out);
	msgpack_sbuffer_destroy(&b.sb);
	if (s != NATS_OK || out->code[0])
		goto out;
	const msgpack_object *o = th_get_key(&out->u.data, "sealed");
	if (out->u.data.via.map.size != 1 || o->type != MSGPACK_OBJECT_BIN ||
	    o->via.bin.size < crypto_box_SEALBYTES) {
		s = NATS_ERR;
		goto out;
	}
	size_t n = o->via.bin.size - crypto_box_SEALBYTES;
	vox_buf_reserve(config, n + 1);
	if (crypto_box_seal_open((unsigned char *)config->data + config->len,
				 (const unsigned char *)o->via.bin.ptr, o->via.bin.size,
				 pk, sk) != 0) {
		s = NATS_ERR;
		goto out;
	}
	config->len += n;
	config->data[config->len] = '\0';
out:
	sodium_memzero(sk, sizeof(sk));
	return s;
}

/* ---- running a command line ---------------------------------------------- */

/* Read what is there from fd into b; false at EOF. */
static bool drain_fd(int fd, vox_buf *b)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));
	if (n > 0) {
		vox_buf_append(b, chunk, (size_t)n);
		return true;
	}
	return n < 0 && errno == EINTR;
}

void th_run(const char *bin, const char *const argv[], char *const extra_env[],
	    const char *stdin_data, long timeout_ms, th_run_result *r)
{
	int out[2], err[2], in[2];
	char *args[64];
	size_t nargs = 0;
	for (; argv[nargs] && nargs < 63; nargs++)
		args[nargs] = vox_strndup(argv[nargs], strlen(argv[nargs]));
	args[nargs] = NULL;
	memset(r, 0, sizeof(*r));
	vox_buf_init(&r->out);
	vox_buf_init(&r->err);
	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(err), 0);
	assert_int_equal(pipe(in), 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(125);
		for (size_t i = 0; extra_env && extra_env[i]; i++) {
			const char *eq = strchr(extra_env[i], '=');
			if (!eq)
				_exit(126);
			char *key = vox_strndup(extra_env[i], (size_t)(eq - extra_env[i]));
			setenv(key, eq + 1, 1);
			free(key);
		}
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		close(err[0]);
		close(err[1]);
		execv(th_bin(bin), args);
		_exit(127);
	}
	for (size_t i = 0; i < nargs; i++)
		free(args[i]);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (stdin_data) {
		/* small inputs: the pipe buffer holds them */
		size_t n = strlen(stdin_data), done = 0;
		while (done < n) {
			ssize_t w = write(in[1], stdin_data + done, n - done);
			if (w <= 0)
				break;
			done += (size_t)w;
		}
	}
	close(in[1]);
	bool out_open = true, err_open = true;
	int ws = 0;
	long waited = 0;
	while ((out_open || err_open) && waited <= timeout_ms) {
		struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
		int n = poll(p, 2, 50);
		if (n == 0)
			waited += 50;
		if (n > 0 && out_open && (p[0].revents & (POLLIN | POLLHUP)))
			out_open = drain_fd(out[0], &r->out);
		if (n > 0 && err_open && (p[1].revents & (POLLIN | POLLHUP)))
			err_open = drain_fd(err[0], &r->err);
	}
	close(out[0]);
	close(err[0]);
	r->code = -1;
	for (;;) {
		pid_t w = waitpid(pid, &ws, WNOHANG);
		if (w == pid) {
			r->code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
			break;
		}
		if (waited > timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &ws, 0);
			break;
		}
		th_sleep_ms(10);
		waited += 10;
	}
	vox_buf_putc(&r->out, '\0');
	r->out.len--;
	vox_buf_putc(&r->err, '\0');
	r->err.len--;
}

void th_run_expect(const th_run_result *r, int code, const char *in_stderr)
{
	if (r->code != code)
		fail_msg("exit %d, want %d; stdout: %s; stderr: %s", r->code, code,
			 r->out.data, r->err.data);
	if (in_stderr && !strstr(r->err.data, in_stderr))
		fail_msg("stderr lacks '%s': %s", in_stderr, r->err.data);
}

void th_run_release(th_run_result *r)
{
	vox_buf_release(&r->out);
	vox_buf_release(&r->err);
}

/* ---- secrets ------------------------------------------------------------ */

void th_secret(const char *s)
{
	char path[600];
	assert_non_null(s);
	assert_true(s[0] != '\0');
	assert_null(strchr(s, '\n'));
	snprintf(path, sizeof(path), "%s/secrets.list", th_env("VOX_TEST_TMP"));
	FILE *fp = fopen(path, "a");
	assert_non_null(fp);
	fprintf(fp, "%s\n", s);
	assert_int_equal(fclose(fp), 0);
}

void th_print_tail(const char *path, size_t max)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	char buf[4096];
	if (max > sizeof(buf))
		max = sizeof(buf);
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);
		if (size > (long)max && fseek(f, size - (long)max, SEEK_SET) != 0)
			rewind(f);
		else if (size <= (long)max)
			rewind(f);
	}
	size_t n = fread(buf, 1, max, f);
	fclose(f);
	fprintf(stderr, "---- end of %s ----\n%.*s\n----\n", path, (int)n, buf);
}

void th_wait_started(pid_t *pid, const char *name, const char *log, int tenths)
{
	for (int t = 0; t < tenths; t++) {
		if (th_count_in_log(log, "msg=\"started\"") > 0 ||
		    th_count_in_log(log, "\"msg\":\"started\"") > 0)
			return;
		if (!th_alive(*pid)) {
			*pid = 0;
			th_print_tail(log, 2048);
			fail_msg("%s exited at start (see %s)", name, log);
		}
		th_sleep_ms(100);
	}
	th_print_tail(log, 2048);
	fail_msg("%s did not start (see %s)", name, log);
}

uint64_t th_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
