/*
 * query.c - request-reply load: vox-bench query against vox-query (or the
 * echo responder), and vox-bench echo, the responder without a database
 * whose round trip is the baseline of the query figures.
 *
 *   vox-bench query --url NATS_URL --org ORG_ID [--rate R] [--seconds S]
 *                   [--inflight K] [--subject-kind wallet|echo] [--label k=v]...
 *       request-reply latency of vox-query (query.wallet.<org>), from one
 *       connection with SendAsap and one wildcard inbox subscription.
 *       --rate R > 0 (default 2000) is an open loop: request i is due at
 *       t0 + i/R and its latency runs from then, not from when it left, so
 *       a stall is charged to every request it delayed (no coordinated
 *       omission); late requests go at once. --rate 0 is saturation: a
 *       closed loop keeping K requests (default 32) outstanding, latency
 *       from the send. S seconds of sending (default 10, at most 120),
 *       then up to 5 s for the last replies; the rest count as timeouts.
 *       Replies with Nats-Service-Error-Code (or a no-responders status)
 *       count as errors; percentiles are over the ok replies, exact (all
 *       samples sorted). achieved_rps = ok / (last reply - t0).
 *       send_lag_p99_us/send_lag_max_us: how late the sender itself took
 *       requests up, the client's own share of the latency. Each --label
 *       adds a string field to the line. --url defaults to
 *       $VOX_NATS_URL. Exit 0 when it ran (the figures say how well), 2
 *       on usage errors, 3 when NATS is unreachable.
 *
 *   vox-bench echo --url NATS_URL [--seconds S]
 *       a responder on bench.echo.* without a database; `query
 *       --subject-kind echo` against it is the baseline of the query
 *       figures: the same round trip on the same machine, minus vox-query.
 */
#include "bench/bench.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "io/log.h"
#include "io/natsconn.h"

/* ---- query: request-reply load on vox-query ------------------------------ */

#define Q_DEFAULT_RATE 2000
#define Q_MAX_RATE 100000
#define Q_DEFAULT_SECONDS 10
#define Q_MAX_SECONDS 120
#define Q_DEFAULT_INFLIGHT 32
#define Q_MAX_INFLIGHT 10000
#define Q_MAX_LABELS 8
#define Q_GRACE_NS INT64_C(5000000000) /* for the last replies */

/* Requests live in chunks that never move, so a reply can find its slot
 * while the sender adds more. The chunk table bounds a run's requests. */
#define Q_CHUNK_BITS 16
#define Q_CHUNK ((int64_t)1 << Q_CHUNK_BITS)
#define Q_MAX_CHUNKS 256
#define Q_MAX_REQUESTS (Q_CHUNK * Q_MAX_CHUNKS)

enum { Q_PENDING = 0, Q_OK, Q_ERROR };

typedef struct qslot {
	int64_t due_ns; /* scheduled (fixed rate) or sent (saturation) */
	int64_t lag_ns; /* how late the sender took it up */
	int64_t lat_ns; /* reply arrival - due_ns */
	int state;
} qslot;

typedef struct qlabel {
	const char *key;
	const char *value;
} qlabel;

typedef struct qopts {
	const char *url;
	const char *org;
	const char *kind; /* endpoint: wallet */
	long rate;        /* 0: saturation */
	long seconds;
	long inflight;
	qlabel labels[Q_MAX_LABELS];
	size_t nlabels;
} qopts;

typedef struct qbench {
	pthread_mutex_t lock; /* everything below but the constants */
	pthread_cond_t cond;  /* every request answered */
	natsConnection *nc;   /* constant during the run */
	char subject[128];
	char inbox[64];
	size_t inbox_len;
	bool saturation;
	int64_t end_ns;       /* saturation: no new request from then on */
	qslot *chunks[Q_MAX_CHUNKS];
	int64_t sent;         /* slots handed out: indices [0, sent) */
	int64_t answered;     /* ok + errors */
	int64_t ok;
	int64_t errors;
	int64_t send_failures; /* counted in errors too */
	int64_t strays;        /* replies to nothing we are waiting for */
	int64_t last_reply_ns;
	bool closed;           /* past the deadline: replies are ignored */
} qbench;

static const unsigned char q_body[] = {0x80}; /* msgpack {} */

static qslot *slot_at(qbench *b, int64_t i)
{
	return &b->chunks[i >> Q_CHUNK_BITS][i & (Q_CHUNK - 1)];
}

/* A new request due at due_ns; its index, or -1 at the cap. Under lock. */
static int64_t slot_take(qbench *b, int64_t due_ns)
{
	int64_t i = b->sent;
	if (i >= Q_MAX_REQUESTS)
		return -1;
	if (!b->chunks[i >> Q_CHUNK_BITS])
		b->chunks[i >> Q_CHUNK_BITS] =
			vox_calloc((size_t)Q_CHUNK, sizeof(qslot));
	qslot *s = slot_at(b, i);
	s->due_ns = due_ns;
	s->lag_ns = bench_now_ns() - due_ns;
	s->lat_ns = 0;
	s->state = Q_PENDING;
	b->sent++;
	return i;
}

/* Settle request i as ok or failed at time t. Under lock; false when it was
 * not pending. */
static bool slot_settle(qbench *b, int64_t i, bool failed, int64_t t)
{
	if (b->closed || i < 0 || i >= b->sent)
		return false;
	qslot *s = slot_at(b, i);
	if (s->state != Q_PENDING)
		return false;
	s->state = failed ? Q_ERROR : Q_OK;
	s->lat_ns = t - s->due_ns;
	b->answered++;
	if (failed)
		b->errors++;
	else
		b->ok++;
	if (b->answered == b->sent)
		pthread_cond_broadcast(&b->cond);
	return true;
}

static void send_one(qbench *b, int64_t i)
{
	char reply[96];
	snprintf(reply, sizeof(reply), "%s.%" PRId64, b->inbox, i);
	natsStatus s = natsConnection_PublishRequest(b->nc, b->subject, reply,
						     q_body, sizeof(q_body));
	if (s == NATS_OK)
		return;
	pthread_mutex_lock(&b->lock);
	if (slot_settle(b, i, true, bench_now_ns()))
		b->send_failures++;
	pthread_mutex_unlock(&b->lock);
}

/* The request index a reply subject names (<inbox>.<i>), or -1. */
static int64_t reply_index(const qbench *b, const char *subj)
{
	if (!subj || strncmp(subj, b->inbox, b->inbox_len) != 0 ||
	    subj[b->inbox_len] != '.')
		return -1;
	const char *p = subj + b->inbox_len + 1;
	int64_t i = 0;
	size_t n = 0;
	for (; *p; p++, n++) {
		if (*p < '0' || *p > '9' || n >= 18)
			return -1;
		i = i * 10 + (*p - '0');
	}
	return n ? i : -1;
}

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
		     void *closure)
{
	qbench *b = closure;
	int64_t t = bench_now_ns();
	const char *v = NULL;
	VOX_UNUSED(nc);
	VOX_UNUSED(sub);
	bool failed = natsMsg_IsNoResponders(msg) ||
		      natsMsgHeader_Get(msg, "Nats-Service-Error-Code", &v) == NATS_OK ||
		      natsMsgHeader_Get(msg, "Status", &v) == NATS_OK;
	int64_t i = reply_index(b, natsMsg_GetSubject(msg));
	natsMsg_Destroy(msg);

	int64_t next = -1;
	pthread_mutex_lock(&b->lock);
	if (slot_settle(b, i, failed, t)) {
		if (t > b->last_reply_ns)
			b->last_reply_ns = t;
		/* saturation: each reply lets the next request go */
		if (b->saturation && t < b->end_ns)
			next = slot_take(b, bench_now_ns());
	} else {
		b->strays++;
	}
	pthread_mutex_unlock(&b->lock);
	if (next >= 0)
		send_one(b, next);
}


/* Open loop: request i due at t0 + i/rate, sent at once when late. */
static void run_fixed(qbench *b, const qopts *o, int64_t *t0)
{
	int64_t n = (int64_t)o->rate * o->seconds;
	if (n > Q_MAX_REQUESTS)
		n = Q_MAX_REQUESTS;
	*t0 = bench_now_ns() + 1000000;
	/* a sender that falls this far behind gives up: bounded in time */
	int64_t give_up = *t0 + (int64_t)o->seconds * NS_PER_S + Q_GRACE_NS;
	for (int64_t k = 0; k < n; k++) {
		int64_t due = *t0 + k * NS_PER_S / o->rate;
		bench_sleep_until(due);
		if (bench_now_ns() > give_up) {
			fprintf(stderr, "vox-bench: sender %" PRId64
				" requests behind; stopping\n", n - k);
			break;
		}
		pthread_mutex_lock(&b->lock);
		int64_t i = slot_take(b, due);
		pthread_mutex_unlock(&b->lock);
		if (i < 0)
			break;
		send_one(b, i);
	}
}

/* Closed loop: inflight requests outstanding; each reply sends the next
 * (on_reply) until end_ns. */
static void run_saturation(qbench *b, const qopts *o, int64_t *t0)
{
	*t0 = bench_now_ns();
	pthread_mutex_lock(&b->lock);
	b->end_ns = *t0 + (int64_t)o->seconds * NS_PER_S;
	pthread_mutex_unlock(&b->lock);
	for (long k = 0; k < o->inflight; k++) {
		pthread_mutex_lock(&b->lock);
		int64_t i = slot_take(b, bench_now_ns());
		pthread_mutex_unlock(&b->lock);
		if (i < 0)
			break;
		send_one(b, i);
	}
	bench_sleep_until(b->end_ns);
}





static void report(qbench *b, const qopts *o, int64_t t0)
{
	size_t n = 0;
	int64_t *lat = vox_malloc((size_t)b->ok * sizeof(int64_t));
	int64_t *lag = vox_malloc((size_t)b->sent * sizeof(int64_t));
	for (int64_t i = 0; i < b->sent; i++) {
		const qslot *s = slot_at(b, i);
		if (s->state == Q_OK && n < (size_t)b->ok)
			lat[n++] = s->lat_ns / 1000;
		lag[i] = s->lag_ns / 1000;
	}
	bench_sort(lat, n);
	bench_sort(lag, (size_t)b->sent);
	double span = (double)(b->last_reply_ns - t0) / 1e9;
	double achieved = b->ok > 0 && span > 0 ? (double)b->ok / span : 0.0;
	printf("{\"scenario\":\"query\",\"endpoint\":");
	bench_print_json_str(o->kind);
	printf(",\"mode\":\"%s\",\"offered_rps\":%ld,",
	       b->saturation ? "saturation" : "fixed", o->rate);
	if (b->saturation)
		printf("\"inflight\":%ld,", o->inflight);
	printf("\"achieved_rps\":%.1f,\"sent\":%" PRId64 ",\"ok\":%" PRId64
	       ",\"errors\":%" PRId64 ",\"timeouts\":%" PRId64
	       ",\"p50_us\":%" PRId64 ",\"p99_us\":%" PRId64
	       ",\"p999_us\":%" PRId64 ",\"max_us\":%" PRId64,
	       achieved, b->sent, b->ok, b->errors, b->sent - b->answered,
	       bench_percentile(lat, n, 0.50), bench_percentile(lat, n, 0.99),
	       bench_percentile(lat, n, 0.999), n ? lat[n - 1] : 0);
	/* the client's own share: how late requests left against schedule */
	printf(",\"send_lag_p99_us\":%" PRId64 ",\"send_lag_max_us\":%" PRId64,
	       bench_percentile(lag, (size_t)b->sent, 0.99),
	       b->sent ? lag[b->sent - 1] : 0);
	for (size_t i = 0; i < o->nlabels; i++) {
		putchar(',');
		bench_print_json_str(o->labels[i].key);
		putchar(':');
		bench_print_json_str(o->labels[i].value);
	}
	printf("}\n");
	fflush(stdout);
	if (b->send_failures || b->strays)
		fprintf(stderr, "vox-bench: %" PRId64 " sends failed, %" PRId64
			" stray replies\n", b->send_failures, b->strays);
	free(lag);
	free(lat);
}

static int bench_query(const qopts *o)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsInbox *inbox = NULL;
	char err[256] = "";
	int code = 3;
	int64_t t0 = 0;

	vox_log_setup("vox-bench", "warn", NULL);
#ifdef __linux__
	/* wake on time: the default 50 us slack would be charged to latency */
	int prc = prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	VOX_UNUSED(prc);
#endif
	qbench *b = vox_calloc(1, sizeof(*b));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines: bench_now_ns() */
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	b->saturation = o->rate == 0;
	if (strcmp(o->kind, "echo") == 0)
		snprintf(b->subject, sizeof(b->subject), "bench.echo.%s", o->org);
	else
		snprintf(b->subject, sizeof(b->subject), "query.%s.%s", o->kind, o->org);

	vox_nats_opts no = {
		.url = o->url,
		.name = "vox-bench",
		.send_asap = true,
		.timeout_ms = 2000,
	};
	vox_status st = vox_nats_connect(&nc, &no, err, sizeof(err));
	if (st != VOX_OK) {
		fprintf(stderr, "vox-bench: %s\n", err);
		code = st == VOX_E_CONFIG || st == VOX_E_INVALID ? 2 : 3;
		goto out;
	}
	b->nc = nc;
	natsStatus s = natsInbox_Create(&inbox);
	if (s == NATS_OK) {
		snprintf(b->inbox, sizeof(b->inbox), "%s", (const char *)inbox);
		b->inbox_len = strlen(b->inbox);
		char wild[80];
		snprintf(wild, sizeof(wild), "%s.*", b->inbox);
		s = natsConnection_Subscribe(&sub, nc, wild, on_reply, b);
	}
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(sub, -1, -1);
	if (s == NATS_OK) /* the subscription is in place before any request */
		s = natsConnection_FlushTimeout(nc, 2000);
	if (s != NATS_OK) {
		fprintf(stderr, "vox-bench: subscribe: %s\n", natsStatus_GetText(s));
		goto out;
	}

	if (b->saturation)
		run_saturation(b, o, &t0);
	else
		run_fixed(b, o, &t0);

	/* the last replies: up to Q_GRACE_NS after the last request was due */
	pthread_mutex_lock(&b->lock);
	int64_t deadline = bench_now_ns() + Q_GRACE_NS;
	struct timespec ts = {(time_t)(deadline / NS_PER_S),
			      (long)(deadline % NS_PER_S)};
	for (int waits = 0; b->answered < b->sent && waits < 1000; waits++) {
		if (bench_now_ns() >= deadline)
			break;
		int rc = pthread_cond_timedwait(&b->cond, &b->lock, &ts);
		if (rc == ETIMEDOUT)
			break;
	}
	b->closed = true;
	pthread_mutex_unlock(&b->lock);
	code = 0;
out:
	if (sub) {
		/* drain before destroying (a 3.4.1 race otherwise) */
		if (natsSubscription_Drain(sub) == NATS_OK) {
			natsStatus ds = natsSubscription_WaitForDrainCompletion(sub, 2000);
			VOX_UNUSED(ds);
		}
		natsSubscription_Destroy(sub);
	}
	natsConnection_Destroy(nc);
	natsInbox_Destroy(inbox);
	/* every library thread gone before b goes */
	natsStatus cs = nats_CloseAndWait(2000);
	VOX_UNUSED(cs);
	if (code == 0)
		report(b, o, t0);
	for (size_t i = 0; i < Q_MAX_CHUNKS; i++)
		free(b->chunks[i]);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
	return code;
}

/* A subject token: no dots, wildcards or white space. */
static bool token_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (*s == '.' || *s == '*' || *s == '>' || (unsigned char)*s <= ' ')
			return false;
	return true;
}

static bool label_key_ok(const char *k, size_t n)
{
	static const char *const taken[] = {
		"scenario", "endpoint", "mode", "offered_rps", "inflight",
		"achieved_rps", "sent", "ok", "errors", "timeouts", "p50_us",
		"p99_us", "p999_us", "max_us", "send_lag_p99_us",
		"send_lag_max_us"};
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	for (size_t i = 0; i < VOX_NELEM(taken); i++)
		if (strlen(taken[i]) == n && memcmp(taken[i], k, n) == 0)
			return false;
	return true;
}


static void usage(FILE *f)
{
	fprintf(f,
		"usage: vox-bench query --url NATS_URL --org ORG_ID [--rate R]"
		" [--seconds S]\n"
		"                       [--inflight K] [--subject-kind wallet|echo]"
		" [--label KEY=VALUE]...\n"
		"  R requests/s offered, open loop (default %d, at most %d); --rate 0"
		" is\n"
		"  saturation with K outstanding (default %d). S seconds (default %d,"
		" at most %d).\n"
		"  --url defaults to $VOX_NATS_URL. One JSON line on stdout. Exit 0"
		" ran,\n"
		"  2 usage, 3 NATS unreachable.\n"
		"       vox-bench echo --url NATS_URL [--seconds S]\n"
		"  answer bench.echo.* with a fixed reply (no database), for query\n"
		"  --subject-kind echo: the machine's NATS round trip.\n",
		Q_DEFAULT_RATE, Q_MAX_RATE, Q_DEFAULT_INFLIGHT, Q_DEFAULT_SECONDS,
		Q_MAX_SECONDS);
}

/* vox-bench query ...: 2 on a usage error. */
int bench_query_main(int argc, char **argv)
{
	qopts o = {
		.url = getenv("VOX_NATS_URL"),
		.kind = "wallet",
		.rate = Q_DEFAULT_RATE,
		.seconds = Q_DEFAULT_SECONDS,
		.inflight = Q_DEFAULT_INFLIGHT,
	};
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = true;
		if (!v) {
			ok = false;
		} else if (strcmp(a, "--url") == 0) {
			o.url = v;
		} else if (strcmp(a, "--org") == 0) {
			o.org = v;
			ok = token_ok(v);
		} else if (strcmp(a, "--rate") == 0) {
			ok = bench_parse_long(&o.rate, v, 0, Q_MAX_RATE);
		} else if (strcmp(a, "--seconds") == 0) {
			ok = bench_parse_long(&o.seconds, v, 1, Q_MAX_SECONDS);
		} else if (strcmp(a, "--inflight") == 0) {
			ok = bench_parse_long(&o.inflight, v, 1, Q_MAX_INFLIGHT);
		} else if (strcmp(a, "--subject-kind") == 0) {
			o.kind = v;
			ok = strcmp(v, "wallet") == 0 || strcmp(v, "echo") == 0;
		} else if (strcmp(a, "--label") == 0) {
			const char *eq = strchr(v, '=');
			ok = eq && o.nlabels < Q_MAX_LABELS &&
			     label_key_ok(v, (size_t)(eq - v));
			if (ok) {
				/* the key is argv text up to '=': split in place */
				argv[i + 1][eq - v] = '\0';
				o.labels[o.nlabels].key = argv[i + 1];
				o.labels[o.nlabels].value = argv[i + 1] + (eq - v) + 1;
				for (size_t k = 0; k < o.nlabels; k++)
					if (strcmp(o.labels[k].key, v) == 0)
						ok = false;
				o.nlabels++;
			}
		} else {
			fprintf(stderr, "vox-bench: unknown option %s\n", a);
			usage(stderr);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "vox-bench: bad or missing value for %s\n", a);
			usage(stderr);
			return 2;
		}
		i++;
	}
	if (!o.url || !*o.url || !o.org) {
		fprintf(stderr, "vox-bench: query needs --url (or VOX_NATS_URL)"
			" and --org\n");
		usage(stderr);
		return 2;
	}
	return bench_query(&o);
}
/* ---- echo: the machine's own request-reply round trip -------------------- */

static volatile sig_atomic_t echo_stop;

static void on_echo_signal(int sig)
{
	VOX_UNUSED(sig);
	echo_stop = 1;
}

/* A reply of a wallet answer's size and shape, prepared once. */
static const unsigned char echo_body[] = {
	0x88, 0xad, 'b', 'a', 'l', 'a', 'n', 'c', 'e', '_', 'p', 'e', 'n', 'c',
	'e', 0xcd, 0x01, 0xe2, 0xb0, 'd', 'e', 'b', 't', '_', 'l', 'i', 'm', 'i',
	't', '_', 'p', 'e', 'n', 'c', 'e', 0xcd, 0x01, 0xf4, 0xaf, 'a', 'v', 'a',
	'i', 'l', 'a', 'b', 'l', 'e', '_', 'p', 'e', 'n', 'c', 'e', 0xcd, 0x03,
	0xd6, 0xa7, 'i', 'n', '_', 'd', 'e', 'b', 't', 0xc2, 0xae, 'u', 'n', 'b',
	'i', 'l', 'l', 'e', 'd', '_', 'p', 'e', 'n', 'c', 'e', 0x00, 0xb1, 'l',
	'o', 'w', '_', 'b', 'a', 'l', 'a', 'n', 'c', 'e', '_', 'p', 'e', 'n', 'c',
	'e', 0xcc, 0xc8, 0xaf, 'r', 'a', 't', 'e', '_', 'p', 'e', 'r', '_', 'm',
	'i', 'n', 'u', 't', 'e', 0x46, 0xb1, 'm', 'i', 'n', 'u', 't', 'e', 's',
	'_', 'r', 'e', 'm', 'a', 'i', 'n', 'i', 'n', 'g', 0x0e,
};

static void on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
		    void *closure)
{
	VOX_UNUSED(sub);
	VOX_UNUSED(closure);
	const char *reply = natsMsg_GetReply(msg);
	if (reply) {
		natsStatus s = natsConnection_Publish(nc, reply, echo_body,
						      (int)sizeof(echo_body));
		VOX_UNUSED(s);
	}
	natsMsg_Destroy(msg);
}

/*
 * vox-bench echo: answer bench.echo.* with a fixed wallet-sized reply, the
 * way vox-query answers (one SendAsap connection, a queue subscription),
 * but without a database: `query --subject-kind echo` against it measures
 * what the machine's NATS round trip alone costs. Runs until SIGTERM /
 * SIGINT or --seconds (default 600).
 */
int bench_echo_main(int argc, char **argv)
{
	const char *url = getenv("VOX_NATS_URL");
	long seconds = 600;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
			url = argv[++i];
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc &&
			   bench_parse_long(&seconds, argv[i + 1], 1, 3600)) {
			i++;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!url || !*url) {
		fprintf(stderr, "vox-bench: echo needs --url (or VOX_NATS_URL)\n");
		return 2;
	}
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	char err[256] = "";
	vox_log_setup("vox-bench", "warn", NULL);
	vox_nats_opts no = {.url = url, .name = "vox-bench-echo", .send_asap = true,
			    .timeout_ms = 2000};
	if (vox_nats_connect(&nc, &no, err, sizeof(err)) != VOX_OK) {
		fprintf(stderr, "vox-bench: %s\n", err);
		return 3;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_echo_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	natsStatus s = natsConnection_QueueSubscribe(&sub, nc, "bench.echo.*", "q",
						     on_echo, NULL);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(sub, -1, -1);
	if (s == NATS_OK)
		s = natsConnection_Flush(nc);
	if (s != NATS_OK) {
		fprintf(stderr, "vox-bench: echo: %s\n", natsStatus_GetText(s));
		natsSubscription_Destroy(sub);
		natsConnection_Destroy(nc);
		return 3;
	}
	int64_t end = bench_now_ns() + (int64_t)seconds * NS_PER_S;
	while (!echo_stop && bench_now_ns() < end) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
	return 0;
}

