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

#include "io/log.h"
#include "io/natsconn.h"
#include "io/streams.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

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

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigset_t serving = set; /* the main loop's: SIGHUP too */
	sigaddset(&serving, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &serving, NULL);
	signal(SIGPIPE, SIG_IGN);

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

	int sig;
	while ((sig = wait_signal(&serving, 1000)) == 0 || sig == SIGHUP)
		if (sig == SIGHUP)
			on_hangup(&a);
	vox_info("msg=\"stopping\" signal=%d", sig);
	/* finish and commit the batches in hand, ack them, publish */
	if (a.rt)
		vox_runtime_stop(a.rt);
	if (def->teardown)
		def->teardown(&a, def->ctx);
	code = 0;
out:
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
