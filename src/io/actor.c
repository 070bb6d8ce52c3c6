/*
 * actor.c - lifecycle of an actor process (see actor.h).
 *
 * Signals are blocked in every thread and collected by the main thread with
 * sigtimedwait, so no handler runs in async-signal context and libnats
 * threads never see them. SIGHUP is blocked from the start too (its
 * default action would end the process) but only waited for once the
 * actor serves: one sent while it starts stays pending until then.
 */
#include "io/actor.h"

#include "core/metrics.h"
#include "io/http.h"
#include "io/log.h"
#include "io/natsconn.h"
#include "io/pg.h"
#include "io/pgpool.h"
#include "io/streams.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* The consume threads must go round within this for /healthz and the
 * systemd watchdog to call the process alive. */
#define ALIVE_MS 10000
/* A readiness answer is reused for this long: probes and scrapes do not
 * each cost a database round trip and a JetStream request. */
#define READY_CACHE_MS 1000

struct vox_actor {
	const vox_actor_def *def;
	vox_actor_config cfg;
	vox_runtime_config rcfg;
	natsConnection *nc;     /* consuming */
	natsConnection *nc_srv; /* services and endpoints, SendAsap */
	vox_service *svc;
	vox_runtime *rt;
	char inbox[128];    /* the connections' inbox prefix */
	atomic_bool set_up; /* setup succeeded: the actor's metadata may run */
	/* the HTTP endpoints (VOX_HTTP_ADDR): they read nc, svc and rt only
	 * while serving is set, which is between start and stop */
	vox_http *http;
	atomic_bool serving;
	int64_t started_s; /* the process's start, Unix seconds */
	vox_pgpool *health_db;
	pthread_mutex_t ready_lock;
	int64_t ready_at_ms; /* when ready_why was computed, 0 never */
	char ready_why[512]; /* "" when ready */
};

#define CFG_OFF(f) offsetof(vox_actor_config, f)

const vox_cfg_var vox_actor_vars[] = {
	{"VOX_NATS_URL", VOX_CFG_STR, "nats://127.0.0.1:4222", 0, 0, NULL,
	 CFG_OFF(nats_url), "NATS server URL(s), comma-separated"},
	{"VOX_NATS_USER", VOX_CFG_STR, "", 0, 0, NULL, CFG_OFF(nats_user),
	 "NATS user name"},
	{"VOX_NATS_PASSWORD", VOX_CFG_SECRET, "", 0, 0, NULL,
	 CFG_OFF(nats_password), "NATS password"},
	{"VOX_NATS_CREDS", VOX_CFG_STR, "", 0, 0, NULL, CFG_OFF(nats_creds),
	 "NATS credentials file (JWT + nkey)"},
	{"VOX_NATS_TLS_CA", VOX_CFG_STR, "", 0, 0, NULL, CFG_OFF(nats_tls_ca),
	 "CA bundle; setting it turns TLS on"},
	{"VOX_NATS_TLS_CERT", VOX_CFG_STR, "", 0, 0, NULL,
	 CFG_OFF(nats_tls_cert), "client certificate for TLS"},
	{"VOX_NATS_TLS_KEY", VOX_CFG_STR, "", 0, 0, NULL, CFG_OFF(nats_tls_key),
	 "client key for TLS"},
	{"VOX_NATS_INBOX_PREFIX", VOX_CFG_STR, "", 0, 0, NULL,
	 CFG_OFF(nats_inbox_prefix),
	 "prefix of replies and deliveries (default _INBOX_<VOX_NATS_USER>)"},
	{"VOX_PG_DSN", VOX_CFG_SECRET, NULL, 0, 0, NULL, CFG_OFF(pg_dsn),
	 "PostgreSQL connection string (libpq)"},
	{"VOX_LOG_LEVEL", VOX_CFG_ENUM, "info", 0, 0, "debug|info|warn|error",
	 CFG_OFF(log_level), "lowest level logged"},
	{"VOX_LOG_FORMAT", VOX_CFG_ENUM, "logfmt", 0, 0, "logfmt|json",
	 CFG_OFF(log_format), "one logfmt line or one JSON object per event"},
	{"VOX_HTTP_ADDR", VOX_CFG_STR, "", 0, 0, NULL, CFG_OFF(http_addr),
	 "host:port of /metrics, /healthz and /readyz (off when empty;"
	 " port 0 picks one and logs it)"},
};
const size_t vox_actor_nvars = VOX_NELEM(vox_actor_vars);

static const char *env_get(const char *name, void *ctx)
{
	VOX_UNUSED(ctx);
	return getenv(name);
}

const vox_actor_config *vox_actor_cfg(const vox_actor *a)
{
	return &a->cfg;
}

natsConnection *vox_actor_nats(const vox_actor *a)
{
	return a->nc_srv;
}

const vox_runtime_config *vox_actor_runtime_cfg(const vox_actor *a)
{
	return &a->rcfg;
}

vox_service *vox_actor_service(const vox_actor *a)
{
	return a->svc;
}

static void usage(const vox_actor_def *def, FILE *f)
{
	fprintf(f, "usage: %s [--help] [--version]\n\n%s.\n\n", def->name,
		def->description);
	vox_cfg_help(f, vox_actor_vars, vox_actor_nvars);
	vox_cfg_help(f, vox_runtime_vars, vox_runtime_nvars);
	if (def->nvars)
		vox_cfg_help(f, def->vars, def->nvars);
}

/* Wait up to ms for a signal of set; returns the signal or 0. */
static int wait_signal(const sigset_t *set, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	int sig = sigtimedwait(set, NULL, &ts);
	return sig > 0 ? sig : 0;
}

/* Connect, retrying with a growing delay until connected or signalled.
 * The outage is logged once, the recovery once. */
static vox_status connect_nats(vox_actor *a, const sigset_t *set,
			       natsConnection **out, bool send_asap)
{
	vox_nats_opts o = {
		.url = a->cfg.nats_url,
		.name = a->def->name,
		.user = a->cfg.nats_user,
		.password = a->cfg.nats_password,
		.creds = a->cfg.nats_creds,
		.tls_ca = a->cfg.nats_tls_ca,
		.tls_cert = a->cfg.nats_tls_cert,
		.tls_key = a->cfg.nats_tls_key,
		.inbox_prefix = a->cfg.nats_inbox_prefix,
		.send_asap = send_asap,
	};
	long delay = 100;
	bool logged = false;
	for (;;) {
		char err[384];
		vox_status st = vox_nats_connect(out, &o, err, sizeof(err));
		/* a consuming actor needs JetStream; say so rather than fail
		 * later with "no responders" */
		if (st == VOX_OK && a->def->ninputs > 0 &&
		    (st = vox_nats_require_js(*out, err, sizeof(err))) != VOX_OK) {
			natsConnection_Destroy(*out);
			*out = NULL;
		}
		if (st == VOX_OK) {
			if (logged)
				vox_info("msg=\"nats reachable again\"");
			return VOX_OK;
		}
		if (!vox_status_is_transient(st)) {
			vox_error("msg=\"nats connect failed\" error=\"%s\"", err);
			return st;
		}
		if (!logged) {
			vox_warn("msg=\"nats unreachable, retrying\" error=\"%s\"",
				 err);
			sd_notifyf(0, "STATUS=waiting for NATS: %s", err);
			logged = true;
		}
		if (wait_signal(set, delay))
			return VOX_E_UNAVAILABLE;
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
}

static void service_metadata(vox_buf *members, void *ctx)
{
	vox_actor *a = ctx;
	size_t start = members->len;
	if (a->rt)
		vox_runtime_stats(a->rt, members);
	if (!a->def->metadata || !atomic_load(&a->set_up))
		return;
	vox_buf own;
	vox_buf_init(&own);
	a->def->metadata(&own, a->def->ctx);
	if (own.len) {
		if (members->len > start)
			vox_buf_putc(members, ',');
		vox_buf_append(members, own.data, own.len);
	}
	vox_buf_release(&own);
}

/* ---- HTTP: /metrics, /healthz, /readyz ------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Live: the process answers and its consume threads go round. */
static int http_healthz(vox_buf *body, const char **ctype, void *ctx)
{
	vox_actor *a = ctx;
	VOX_UNUSED(ctype);
	if (atomic_load(&a->serving) && a->rt &&
	    !vox_runtime_alive(a->rt, ALIVE_MS)) {
		vox_buf_printf(body, "stalled: the consume threads have not gone"
			       " round for %d s\n", ALIVE_MS / 1000);
		return 503;
	}
	vox_buf_puts(body, "ok\n");
	return 200;
}

static vox_status health_open(PGconn *c, void *ctx, char *err, size_t errlen)
{
	VOX_UNUSED(ctx);
	return vox_pg_exec(c, "SET statement_timeout = 2000", err, errlen);
}

/* Why the actor is not ready ("" when it is): NATS connected (both
 * connections), PostgreSQL answering, every consumer present. */
static void readiness(vox_actor *a, char *why, size_t len)
{
	char err[384];
	why[0] = 0;
	if (!atomic_load(&a->serving)) {
		snprintf(why, len, "starting or stopping");
		return;
	}
	if (natsConnection_Status(a->nc) != NATS_CONN_STATUS_CONNECTED ||
	    natsConnection_Status(a->nc_srv) != NATS_CONN_STATUS_CONNECTED) {
		snprintf(why, len, "nats: not connected");
		return;
	}
	PGconn *c = NULL;
	vox_status st = vox_pgpool_get(&c, a->health_db, err, sizeof(err));
	if (st == VOX_OK) {
		st = vox_pg_exec(c, "SELECT 1", err, sizeof(err));
		vox_pgpool_put(a->health_db, c, st);
	}
	if (st != VOX_OK) {
		snprintf(why, len, "postgres: %s", err);
		return;
	}
	if (a->rt && vox_runtime_check_consumers(a->rt, err, sizeof(err)) != VOX_OK)
		snprintf(why, len, "jetstream: %s", err);
}

static int http_readyz(vox_buf *body, const char **ctype, void *ctx)
{
	vox_actor *a = ctx;
	VOX_UNUSED(ctype);
	pthread_mutex_lock(&a->ready_lock);
	int64_t now = mono_ms();
	if (a->ready_at_ms == 0 || now - a->ready_at_ms >= READY_CACHE_MS) {
		readiness(a, a->ready_why, sizeof(a->ready_why));
		a->ready_at_ms = mono_ms();
	}
	bool ready = a->ready_why[0] == 0;
	if (ready)
		vox_buf_puts(body, "ready\n");
	else
		vox_buf_printf(body, "not ready: %s\n", a->ready_why);
	pthread_mutex_unlock(&a->ready_lock);
	return ready ? 200 : 503;
}

static int http_metrics(vox_buf *body, const char **ctype, void *ctx)
{
	vox_actor *a = ctx;
	*ctype = "text/plain; version=0.0.4; charset=utf-8";
	vox_buf l;
	vox_buf_init(&l);
	vox_prom_label(&l, "actor", a->def->name);
	vox_prom_label(&l, "version", VOX_VERSION);
	vox_prom_family(body, "vox_build_info", "gauge",
			"the actor and its version (always 1)");
	vox_prom_sample(body, "vox_build_info", l.data, 1);
	vox_buf_release(&l);
	vox_prom_family(body, "vox_process_start_time_seconds", "gauge",
			"start of the process, Unix seconds");
	vox_prom_sample(body, "vox_process_start_time_seconds", "",
			(uint64_t)a->started_s);
	bool serving = atomic_load(&a->serving);
	vox_prom_family(body, "vox_serving", "gauge",
			"1 once connected and consuming, until it stops");
	vox_prom_sample(body, "vox_serving", "", serving);
	if (!serving)
		return 200;
	vox_prom_family(body, "vox_nats_connected", "gauge",
			"1 while the connection is up (consume: batches and"
			" acks; services: requests)");
	vox_prom_sample(body, "vox_nats_connected", "conn=\"consume\"",
			natsConnection_Status(a->nc) == NATS_CONN_STATUS_CONNECTED);
	vox_prom_sample(body, "vox_nats_connected", "conn=\"services\"",
			natsConnection_Status(a->nc_srv) == NATS_CONN_STATUS_CONNECTED);
	if (a->rt)
		vox_runtime_metrics(a->rt, body);
	vox_service_metrics(a->svc, body);
	return 200;
}

static const vox_http_route http_routes[] = {
	{"/metrics", http_metrics},
	{"/healthz", http_healthz},
	{"/readyz", http_readyz},
};

/* VOX_HTTP_ADDR: listen before connecting, so a liveness probe answers
 * while the actor waits for its servers. */
static vox_status start_http(vox_actor *a)
{
	char err[384];
	if (!a->cfg.http_addr || !*a->cfg.http_addr)
		return VOX_OK;
	a->health_db = vox_pgpool_new(a->cfg.pg_dsn, 1, 2000, health_open, NULL);
	vox_status st = vox_http_start(&a->http, a->cfg.http_addr, http_routes,
				       VOX_NELEM(http_routes), a, err, sizeof(err));
	if (st != VOX_OK) {
		vox_error("msg=\"http endpoints not started\" addr=\"%s\""
			  " error=\"%s\"", a->cfg.http_addr, err);
		return st;
	}
	vox_info("msg=\"http listening\" addr=\"%s\" port=%u", a->cfg.http_addr,
		 (unsigned)vox_http_port(a->http));
	return VOX_OK;
}

/* ---- systemd ------------------------------------------------------------ */

/* The watchdog interval (half of WatchdogSec), 0 without one. */
static int64_t watchdog_ms(void)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	int64_t ms = (int64_t)(usec / 2000);
	return ms > 0 ? ms : 1;
}

/* A watchdog ping, withheld (and that logged once) while the consume
 * threads are stalled: systemd then restarts the actor. */
static void watchdog_ping(vox_actor *a, bool *withheld)
{
	if (a->rt && !vox_runtime_alive(a->rt, ALIVE_MS)) {
		if (!*withheld)
			vox_error("msg=\"consume threads stalled, watchdog ping"
				  " withheld\" stalled_s=%d", ALIVE_MS / 1000);
		*withheld = true;
		return;
	}
	*withheld = false;
	sd_notify(0, "WATCHDOG=1");
}

/* SIGHUP: the actor's reload, or a note that there is nothing to do. */
static void on_hangup(vox_actor *a)
{
	if (a->def->reload)
		a->def->reload(a, a->def->ctx);
	else
		vox_info("msg=\"sighup ignored: nothing to reload\"");
}

/* One difference between a stream and the configuration, logged once. */
static void on_stream_diff(const char *stream, const vox_stream_diff *d,
			   void *ctx)
{
	VOX_UNUSED(ctx);
	if (d->severity == VOX_STREAM_DROPS)
		vox_error("msg=\"stream would drop data, not starting\" stream=%s"
			  " setting=%s found=\"%s\" wanted=\"%s\" why=\"%s\"",
			  stream, d->setting, d->found, d->wanted, d->why);
	else
		vox_warn("msg=\"stream differs from the configuration\" stream=%s"
			 " setting=%s found=\"%s\" wanted=\"%s\" why=\"%s\"",
			 stream, d->setting, d->found, d->wanted, d->why);
}

/*
 * The streams are the operator's (voxctl streams apply): check them, never
 * change them. A missing one is a fault of the world, not of this
 * process: wait for it, logged once. One that would drop data stops the
 * actor (VOX_E_CONFIG, exit 1), its settings named in the log.
 */
static vox_status check_streams(vox_actor *a, const sigset_t *set)
{
	char err[512];
	int64_t delay = 100;
	bool missing_logged = false, down_logged = false;
	for (;;) {
		jsCtx *js = NULL;
		vox_status st = VOX_E_UNAVAILABLE;
		if (natsConnection_JetStream(&js, a->nc, NULL) == NATS_OK)
			st = vox_streams_verify(js, &a->rcfg, on_stream_diff, a,
						err, sizeof(err));
		else
			snprintf(err, sizeof(err), "jetstream unavailable");
		jsCtx_Destroy(js);
		if (st == VOX_OK) {
			if (missing_logged)
				vox_info("msg=\"streams present\"");
			return VOX_OK;
		}
		if (st == VOX_E_CONFIG)
			return st;
		if (st == VOX_E_NOT_FOUND && !missing_logged) {
			vox_warn("msg=\"stream missing, waiting for it\" error=\"%s\""
				 " fix=\"voxctl streams apply\"", err);
			sd_notifyf(0, "STATUS=waiting for the streams: %s", err);
			missing_logged = true;
		} else if (st != VOX_E_NOT_FOUND && !down_logged) {
			vox_warn("msg=\"jetstream not ready, retrying\" error=\"%s\"",
				 err);
			down_logged = true;
		}
		if (wait_signal(set, delay))
			return VOX_E_UNAVAILABLE;
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
}

/* Consumers, retried while the servers come up. Request-only actors
 * (vox-vault, vox-query) use no stream and check none. */
static vox_status start_runtime(vox_actor *a, const sigset_t *set)
{
	char err[512];
	int64_t delay = 100;
	bool logged = false;
	if (a->def->ninputs == 0)
		return VOX_OK;
	vox_status st = check_streams(a, set);
	if (st != VOX_OK)
		return st;
	for (;;) {
		st = vox_runtime_new(&a->rt, a->nc, a->def->name, a->cfg.pg_dsn,
				     &a->rcfg, a->def->inputs, a->def->ninputs,
				     &a->def->handler, err, sizeof(err));
		if (st == VOX_OK)
			return vox_runtime_start(a->rt);
		if (!vox_status_is_transient(st) && st != VOX_E_INTERNAL) {
			vox_error("msg=\"cannot set up consumers\" error=\"%s\"", err);
			return st;
		}
		if (!logged) {
			vox_warn("msg=\"jetstream not ready, retrying\" error=\"%s\"", err);
			sd_notifyf(0, "STATUS=waiting for JetStream: %s", err);
			logged = true;
		}
		if (wait_signal(set, delay))
			return VOX_E_UNAVAILABLE;
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
}

static vox_status parse_config(vox_actor *a)
{
	vox_buf errors;
	vox_buf_init(&errors);
	vox_status st = vox_cfg_parse(&a->cfg, vox_actor_vars, vox_actor_nvars,
				      env_get, NULL, &errors);
	vox_status st2 = vox_cfg_parse(&a->rcfg, vox_runtime_vars,
				       vox_runtime_nvars, env_get, NULL, &errors);
	vox_status st3 = a->def->nvars
		? vox_cfg_parse(a->def->cfg, a->def->vars, a->def->nvars,
				env_get, NULL, &errors)
		: VOX_OK;
	if (st2 == VOX_OK)
		st2 = vox_runtime_config_check(&a->rcfg, &errors);
	/* a prefix that cannot be one is refused when connecting */
	if (st == VOX_OK && vox_nats_inbox_prefix(a->inbox, sizeof(a->inbox),
						  a->cfg.nats_user,
						  a->cfg.nats_inbox_prefix))
		a->rcfg.inbox_prefix = a->inbox;
	if (st2 == VOX_OK)
		st2 = st3;
	if (st != VOX_OK || st2 != VOX_OK)
		fprintf(stderr, "%s: bad configuration:\n%s", a->def->name,
			errors.data);
	vox_buf_release(&errors);
	return st != VOX_OK ? st : st2;
}

int vox_actor_main(const vox_actor_def *def, int argc, char **argv)
{
	vox_actor a = {.def = def};
	sigset_t set;
	int code = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(def, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("%s %s\n", def->name, VOX_VERSION);
			return 0;
		}
		fprintf(stderr, "%s: unknown argument '%s' (try --help)\n",
			def->name, argv[i]);
		return 2;
	}
	if (parse_config(&a) != VOX_OK)
		return 2;
	vox_log_setup(def->name, a.cfg.log_level, a.cfg.log_format);
	a.started_s = (int64_t)time(NULL);
	pthread_mutex_init(&a.ready_lock, NULL);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigset_t serving = set; /* the main loop's: SIGHUP too */
	sigaddset(&serving, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &serving, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* the HTTP threads start with every signal blocked, like libnats' */
	vox_status hst = start_http(&a);
	if (hst != VOX_OK) {
		code = hst == VOX_E_CONFIG ? 2 : 1;
		goto out;
	}
	sd_notify(0, "STATUS=connecting to NATS");
	if (connect_nats(&a, &set, &a.nc, false) != VOX_OK ||
	    connect_nats(&a, &set, &a.nc_srv, true) != VOX_OK) {
		code = 0; /* signalled while waiting for NATS: a clean stop */
		goto out;
	}
	if (vox_service_new(&a.svc, a.nc_srv, def->name, VOX_VERSION,
			    def->description) != VOX_OK) {
		vox_error("msg=\"bad service name\" name=%s", def->name);
		goto out;
	}
	vox_service_set_metadata_fn(a.svc, service_metadata, &a);
	vox_status st = start_runtime(&a, &set);
	if (st != VOX_OK) {
		code = st == VOX_E_UNAVAILABLE ? 0 : 1;
		goto out;
	}
	if (def->setup && def->setup(&a, def->ctx) != VOX_OK)
		goto out;
	atomic_store(&a.set_up, true);
	if (vox_service_start(a.svc) != VOX_OK)
		goto out;
	vox_info("msg=\"started\" version=%s id=%s inputs=%zu", VOX_VERSION,
		 vox_service_id(a.svc), def->ninputs);
	atomic_store(&a.serving, true);
	sd_notify(0, "READY=1\nSTATUS=serving");

	int64_t wd = watchdog_ms(), next_wd = 0;
	bool withheld = false;
	int sig;
	for (;;) {
		if (wd && mono_ms() >= next_wd) {
			watchdog_ping(&a, &withheld);
			next_wd = mono_ms() + wd;
		}
		sig = wait_signal(&serving, wd && wd < 1000 ? (long)wd : 1000);
		if (sig == SIGHUP) {
			sd_notify(0, "RELOADING=1");
			on_hangup(&a);
			sd_notify(0, "READY=1\nSTATUS=serving");
		} else if (sig) {
			break;
		}
	}
	vox_info("msg=\"stopping\" signal=%d", sig);
	sd_notify(0, "STOPPING=1\nSTATUS=draining");
	atomic_store(&a.serving, false);
	/* finish and commit the batches in hand, ack them, publish */
	if (a.rt)
		vox_runtime_stop(a.rt);
	if (def->teardown)
		def->teardown(&a, def->ctx);
	code = 0;
out:
	atomic_store(&a.serving, false);
	vox_http_stop(a.http); /* before what its handlers read */
	vox_pgpool_free(a.health_db);
	pthread_mutex_destroy(&a.ready_lock);
	vox_service_free(a.svc);
	vox_runtime_free(a.rt);
	for (int i = 0; i < 2; i++) {
		natsConnection *nc = i ? a.nc_srv : a.nc;
		if (nc) {
			natsConnection_FlushTimeout(nc, 2000);
			natsConnection_Destroy(nc);
		}
	}
	nats_CloseAndWait(2000);
	if (code == 0)
		vox_info("msg=\"stopped\"");
	return code;
}
