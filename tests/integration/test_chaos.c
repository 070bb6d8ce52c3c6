/*
 * Integration: chaos with invariants. A seeded random workload (default
 * 20,000 messages across 50 orgs: call.started/call.ended, payment
 * top-ups and refunds, scored leads; 20% exact duplicates, 2% malformed)
 * is published with the public client while a fault schedule runs:
 * kill -9 of every actor (vox-calls, two vox-billing, vox-leads) several
 * times each, restarted after, one nats-server restart and one PostgreSQL
 * restart (fast shutdown). When the consumers are drained it checks:
 *
 *  - every invariant of billing.md, with SQL;
 *  - each org's balance, unbilled total, ledger rows, top-ups, refunds and
 *    charges equal the values the driver computed from the workload alone;
 *  - each call has one row with its final duration;
 *  - every malformed message is in the DLQ stream with a Vox-Error-Reason,
 *    and no valid message is;
 *  - exactly one alert.hot_lead per expected (org, contact, call) on the
 *    ALERTS stream, and the debt-limit and low-balance alerts that do not
 *    depend on the order of events;
 *  - no consumer has pending or unacknowledged messages.
 *
 * Order: vox-billing's two instances (and every nak and redelivery) apply
 * events in an order the test does not control, and the debt limit makes
 * a wallet's outcome depend on that order. The workload is therefore made
 * order-independent:
 *  - "funded" orgs get calls, top-ups and refunds, and an opening balance
 *    that covers all their charges and refunds: they never go below 0 in
 *    any order, so balance = opening + top-ups - refunds - charges and no
 *    shortfall;
 *  - "debt" orgs (one in ten) get only calls: whatever the order, the
 *    deductions take min(total charges, opening + debt limit), the rest is
 *    shortfall, and exactly one debt-limit alert and one low-balance
 *    crossing happen;
 *  - a refund is published only once its payment is in the ledger (a
 *    refund of a payment not yet applied is refused as not_found, so its
 *    outcome would depend on the order); refunds that cannot be confirmed
 *    in time are published after the stream, once their payment is in.
 *
 * VOX_CHAOS_SEED replays a run (the seed and the schedule are printed at
 * start); VOX_CHAOS_EVENTS sets the number of messages (200000 for the
 * long variant). The report goes to stdout and to
 * $VOX_TEST_TMP/chaos-report.txt, which scripts/test.sh prints.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "harness.h"
#include "invariants.h"
#include "vox/client.h"

#define NORGS 50
#define RATE 70
#define DEBT 500
#define LOW 1000
#define HOT 70
#define NSLOTS 4
#define KILLS_PER_ACTOR 3
#define MAX_FAULTS 32

static const char *const slot_bin[NSLOTS] = {"vox-calls", "vox-billing",
					     "vox-billing", "vox-leads"};
static const char *const durables[] = {"vox-calls", "vox-billing-calls",
				       "vox-billing-payments", "vox-leads"};

/* ---- a deterministic generator (splitmix64) ----------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	return th_splitmix64(&rng_state);
}

/* Uniform in [lo, hi]. */
static int64_t rnd(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
}

static void rnd_uuid(char out[37])
{
	unsigned char b[16];
	uint64_t a = rng(), c = rng();
	memcpy(b, &a, 8);
	memcpy(b + 8, &c, 8);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
		 b[11], b[12], b[13], b[14], b[15]);
}

static int64_t charge_of(int64_t d)
{
	return (d * RATE + 59) / 60;
}

/* ---- the workload -------------------------------------------------------- */

enum kind { K_STARTED, K_ENDED, K_PAY, K_REFUND, K_LEAD, K_BAD, K_COUNT };
static const char *const kind_name[K_COUNT] = {
	"call.started", "call.ended", "payment.succeeded", "payment.refunded",
	"lead.scored", "malformed"};

/* Malformed messages: each kind is refused by at least one actor. */
enum bad {
	BAD_NOT_MSGPACK,  /* call.started: bytes that are not msgpack */
	BAD_TRUNCATED,    /* call.ended: a valid payload cut in half */
	BAD_MISSING,      /* payment.succeeded without amount_pence */
	BAD_WRONG_TYPE,   /* lead.scored with lead_score a string */
	BAD_RANGE,        /* call.ended with duration_seconds 90000 */
	BAD_ORG_MISMATCH, /* payment.succeeded for another (real) org */
	BAD_UNKNOWN_ORG,  /* call.started of an org that does not exist */
	BAD_COUNT
};
static const char *const bad_name[BAD_COUNT] = {
	"not msgpack", "truncated", "missing field", "wrong type",
	"out of range", "org mismatch", "unknown org"};

enum dup { DUP_NONE, DUP_SAME_ID, DUP_OTHER_ID };

typedef struct step {
	int64_t key;   /* publishing order */
	int32_t ref;   /* index of the call, payment, refund, lead, bad */
	uint8_t kind;
	uint8_t dup;
} step;

typedef struct wcall {
	int org, phone;
	char id[37];
	int64_t start, duration;
	bool failed, inbound;
} wcall;

typedef struct wpay {
	int org;
	int64_t amount, refundable;
	int64_t pos; /* generation position */
} wpay;

typedef struct wrefund {
	int pay;
	int64_t amount;
} wrefund;

typedef struct wlead {
	int call;
	int64_t score, at;
} wlead;

typedef struct wbad {
	int org, kind;
	int found; /* dead letters seen */
	char code[32];
} wbad;

typedef struct org_exp {
	char id[37];
	bool debt; /* calls only */
	int64_t opening;
	int64_t topups, refunds, charges;
	int64_t ncharged, npays, nrefunds, ncalls, durations;
	int64_t balance, unbilled, ledger_rows;
	int debt_alerts, low_alerts;             /* expected (debt orgs) */
	int got_debt_alerts, got_low_alerts;     /* seen */
} org_exp;

typedef struct fault {
	double at;
	enum { F_KILL, F_START, F_NATS, F_PG_STOP, F_PG_START } what;
	int slot;
	double done_at;
} fault;

typedef struct chaos {
	uint64_t seed;
	long nmsgs;
	double window_s;
	char run[9];
	org_exp orgs[NORGS];
	wcall *calls;
	size_t ncalls, capcalls;
	wpay *pays;
	size_t npays, cappays;
	wrefund *refunds;
	size_t nrefunds, caprefunds;
	wlead *leads;
	size_t nleads, capleads;
	wbad *bads;
	size_t nbads;
	step *steps;
	size_t nsteps, capsteps;
	fault faults[MAX_FAULTS];
	int nfaults;
	/* counts */
	long pub_kind[K_COUNT], dup_same[K_COUNT], dup_other[K_COUNT];
	long js_dropped, retries, deferred;
	/* servers and actors */
	th_nats nats;
	char dsn[512];
	char env_url[128], env_dsn[600];
	pid_t actors[NSLOTS];
	char logs[NSLOTS][600];
	int kills[NSLOTS];
	bool pg_down;
	natsConnection *nc;
	jsCtx *js;
	PGconn *db;
	struct timespec t0;
	vox_buf report;
	int failures;
} chaos;

#define GROW(arr, n, cap)                                                      \
	do {                                                                   \
		if ((n) == (cap)) {                                            \
			(cap) = (cap) ? (cap) * 2 : 64;                        \
			(arr) = vox_realloc((arr), (cap) * sizeof(*(arr)));    \
		}                                                              \
	} while (0)

static double now_s(const chaos *c)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - c->t0.tv_sec) +
	       (double)(t.tv_nsec - c->t0.tv_nsec) / 1e9;
}

/* A line of the report, also printed at once. */
static void say(chaos *c, const char *fmt, ...) VOX_PRINTF(2, 3);
static void say(chaos *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	printf("%s\n", line);
	fflush(stdout);
	vox_buf_puts(&c->report, line);
	vox_buf_puts(&c->report, "\n");
}

/* A failed check: reported, counted; the test fails at the end. */
static void bad_check(chaos *c, const char *fmt, ...) VOX_PRINTF(2, 3);
static void bad_check(chaos *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->failures++;
	if (c->failures <= 40)
		say(c, "  FAIL: %s", line);
}

static step *add_step(chaos *c, int kind, int32_t ref, int64_t key, int dup)
{
	GROW(c->steps, c->nsteps, c->capsteps);
	step *s = &c->steps[c->nsteps++];
	s->kind = (uint8_t)kind;
	s->ref = ref;
	s->key = key;
	s->dup = (uint8_t)dup;
	return s;
}

/* Every 10th org is a debt org: calls and leads only. */
static bool is_debt_org(int o)
{
	return o % 10 == 9;
}

static void plan_workload(chaos *c)
{
	long nbad = c->nmsgs * 2 / 100;
	long ndup = c->nmsgs * 20 / 100;
	long nvalid = c->nmsgs - nbad - ndup;
	int64_t t_base = 1795000000;
	long pos = 0;
	/* valid events, 64 key units apart, jittered by up to 30 positions */
#define KEY_AT(p) ((int64_t)(p) * 64 + rnd(0, 64 * 30))
	for (int o = 0; o < NORGS; o++) {
		rnd_uuid(c->orgs[o].id);
		c->orgs[o].debt = is_debt_org(o);
	}
	while (pos < nvalid) {
		int o = (int)rnd(0, NORGS - 1);
		org_exp *oe = &c->orgs[o];
		int64_t roll = rnd(0, 99);
		if (!oe->debt && roll < 5) {
			GROW(c->pays, c->npays, c->cappays);
			wpay *p = &c->pays[c->npays];
			p->org = o;
			p->amount = rnd(5, 200) * 100;
			p->refundable = p->amount;
			p->pos = pos;
			add_step(c, K_PAY, (int32_t)c->npays++, KEY_AT(pos), DUP_NONE);
			pos++;
			continue;
		}
		if (!oe->debt && roll < 7 && c->npays > 0) {
			/* a refund of a payment of this org made earlier */
			int64_t k = rnd(0, (int64_t)c->npays - 1), pi = -1;
			for (int64_t j = k; j >= 0 && j > k - 400 && pi < 0; j--)
				if (c->pays[j].org == o && c->pays[j].refundable > 0)
					pi = j;
			if (pi < 0)
				continue;
			wpay *p = &c->pays[pi];
			GROW(c->refunds, c->nrefunds, c->caprefunds);
			wrefund *r = &c->refunds[c->nrefunds];
			r->pay = (int)pi;
			r->amount = rnd(1, p->refundable < p->amount / 2 ?
					       p->refundable : p->amount / 2);
			p->refundable -= r->amount;
			/* well after its payment, so that it is usually in */
			long at = pos > p->pos + 1500 ? pos : p->pos + 1500;
			add_step(c, K_REFUND, (int32_t)c->nrefunds++, KEY_AT(at), DUP_NONE);
			pos++;
			continue;
		}
		/* a call: started and ended, perhaps scored leads */
		GROW(c->calls, c->ncalls, c->capcalls);
		wcall *w = &c->calls[c->ncalls];
		w->org = o;
		w->phone = (int)rnd(0, 199);
		rnd_uuid(w->id);
		w->start = t_base + pos;
		int64_t r2 = rnd(0, 99);
		w->failed = r2 < 10;
		if (w->failed)
			w->duration = rnd(0, 20);
		else if (r2 < 40)
			w->duration = rnd(1, 60);
		else if (r2 < 90)
			w->duration = rnd(60, 300);
		else
			w->duration = rnd(300, 1800);
		w->inbound = rnd(0, 9) < 8;
		int32_t ci = (int32_t)c->ncalls++;
		if (pos + 1 < nvalid) {
			add_step(c, K_STARTED, ci, KEY_AT(pos), DUP_NONE);
			pos++;
		}
		add_step(c, K_ENDED, ci, KEY_AT(pos), DUP_NONE);
		pos++;
		int nleads = (!w->failed && w->duration >= 30 && rnd(0, 3) == 0) ?
				     (rnd(0, 9) == 0 ? 2 : 1) : 0;
		for (int k = 0; k < nleads && pos < nvalid; k++) {
			GROW(c->leads, c->nleads, c->capleads);
			wlead *l = &c->leads[c->nleads];
			l->call = ci;
			l->score = rnd(20, 100);
			l->at = w->start + w->duration + 30 + k;
			add_step(c, K_LEAD, (int32_t)c->nleads++, KEY_AT(pos), DUP_NONE);
			pos++;
		}
	}
	/* duplicates: the same event again, a little later; half with the
	 * same Nats-Msg-Id (JetStream drops it), half with another one (it is
	 * stored, and only the database can tell) */
	size_t nvalid_steps = c->nsteps;
	for (long i = 0; i < ndup; i++) {
		step o = c->steps[rnd(0, (int64_t)nvalid_steps - 1)];
		add_step(c, o.kind, o.ref, o.key + rnd(1, 4000) * 64 + 3,
			 rnd(0, 1) ? DUP_SAME_ID : DUP_OTHER_ID);
	}
	/* malformed, anywhere */
	c->nbads = (size_t)nbad;
	c->bads = vox_calloc(c->nbads ? c->nbads : 1, sizeof(*c->bads));
	for (long i = 0; i < nbad; i++) {
		c->bads[i].org = (int)rnd(0, NORGS - 1);
		c->bads[i].kind = (int)(i % BAD_COUNT);
		add_step(c, K_BAD, (int32_t)i, rnd(0, (int64_t)pos * 64), DUP_NONE);
	}
#undef KEY_AT
}

static int step_cmp(const void *a, const void *b)
{
	const step *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	/* same key: originals first */
	return (int)x->dup - (int)y->dup;
}

/* The expected state of every org, from the workload alone. */
static void expect_orgs(chaos *c)
{
	for (size_t i = 0; i < c->ncalls; i++) {
		org_exp *o = &c->orgs[c->calls[i].org];
		int64_t ch = charge_of(c->calls[i].duration);
		o->charges += ch;
		o->ncharged += ch > 0;
		o->ncalls++;
		o->durations += c->calls[i].duration;
	}
	for (size_t i = 0; i < c->npays; i++) {
		c->orgs[c->pays[i].org].topups += c->pays[i].amount;
		c->orgs[c->pays[i].org].npays++;
	}
	for (size_t i = 0; i < c->nrefunds; i++) {
		org_exp *o = &c->orgs[c->pays[c->refunds[i].pay].org];
		o->refunds += c->refunds[i].amount;
		o->nrefunds++;
	}
	for (int k = 0; k < NORGS; k++) {
		org_exp *o = &c->orgs[k];
		o->ledger_rows = o->ncharged + o->npays + o->nrefunds;
		if (!o->debt) {
			/* never below 0, in any order */
			o->opening = o->charges + o->refunds + rnd(500, 5000);
			o->balance = o->opening + o->topups - o->refunds - o->charges;
			o->unbilled = 0;
			continue;
		}
		o->opening = rnd(LOW, 3000);
		int64_t room = o->opening + DEBT;
		int64_t deducted = o->charges < room ? o->charges : room;
		o->balance = o->opening - deducted;
		o->unbilled = o->charges - deducted;
		o->debt_alerts = o->unbilled > 0 ? 1 : 0;
		o->low_alerts = o->balance < LOW ? 1 : 0;
	}
}

/* ---- the fault schedule ------------------------------------------------- */

static int fault_cmp(const void *a, const void *b)
{
	const fault *x = a, *y = b;
	return x->at < y->at ? -1 : x->at > y->at ? 1 : 0;
}

static double rnd_s(double lo, double hi)
{
	return lo + (hi - lo) * (double)(rng() % 1000000) / 1e6;
}

static void plan_faults(chaos *c)
{
	double w = c->window_s;
	int n = 0;
	/* kills: one in each third of the window (so they never overlap the
	 * actor's own restart), restarted 0.2 to 1.5 s later */
	for (int s = 0; s < NSLOTS; s++) {
		double seg = (w - 4.0) / KILLS_PER_ACTOR;
		for (int k = 0; k < KILLS_PER_ACTOR; k++) {
			double at = 2.0 + seg * k + rnd_s(0, seg - 2.0);
			c->faults[n++] = (fault){at, F_KILL, s, 0};
			c->faults[n++] = (fault){at + rnd_s(0.2, 1.5), F_START, s, 0};
		}
	}
	double nats_at = rnd_s(0.2 * w, 0.8 * w);
	double pg_at;
	do
		pg_at = rnd_s(0.2 * w, 0.8 * w);
	while (pg_at > nats_at - 6.0 && pg_at < nats_at + 6.0);
	c->faults[n++] = (fault){nats_at, F_NATS, -1, 0};
	c->faults[n++] = (fault){pg_at, F_PG_STOP, -1, 0};
	c->faults[n++] = (fault){pg_at + rnd_s(1.0, 3.0), F_PG_START, -1, 0};
	c->nfaults = n;
	qsort(c->faults, (size_t)n, sizeof(fault), fault_cmp);
}

static const char *fault_text(const fault *f, char *buf, size_t len)
{
	switch (f->what) {
	case F_KILL:
		snprintf(buf, len, "kill -9 %s#%d", slot_bin[f->slot], f->slot);
		break;
	case F_START:
		snprintf(buf, len, "restart %s#%d", slot_bin[f->slot], f->slot);
		break;
	case F_NATS:
		snprintf(buf, len, "nats-server restart");
		break;
	case F_PG_STOP:
		snprintf(buf, len, "postgres stop (fast)");
		break;
	case F_PG_START:
		snprintf(buf, len, "postgres start");
		break;
	}
	return buf;
}

/* ---- actors ---------------------------------------------------------------- */

static void start_actor(chaos *c, int s)
{
	char *env[] = {c->env_url,
		       c->env_dsn,
		       (char *)(uintptr_t)"VOX_FETCH_WAIT_MS=200",
		       (char *)(uintptr_t)"VOX_ACK_WAIT_S=4",
		       (char *)(uintptr_t)"VOX_RETRY_MAX_MS=1000",
		       (char *)(uintptr_t)"VOX_OUTBOX_AGE_MS=1000",
		       (char *)(uintptr_t)"VOX_OUTBOX_INTERVAL_MS=500",
		       NULL};
	c->actors[s] = th_spawn(slot_bin[s], env, c->logs[s]);
}

static void wait_started(chaos *c, int s, int times)
{
	for (int t = 0; t < 300; t++) {
		if (th_count_in_log(c->logs[s], "msg=\"started\"") >= times)
			return;
		if (!th_alive(c->actors[s])) {
			c->actors[s] = 0;
			fail_msg("%s exited at start (see %s)", slot_bin[s], c->logs[s]);
		}
		th_sleep_ms(100);
	}
	fail_msg("%s did not start (see %s)", slot_bin[s], c->logs[s]);
}

static void run_fault(chaos *c, fault *f)
{
	char buf[96];
	f->done_at = now_s(c);
	switch (f->what) {
	case F_KILL:
		if (c->actors[f->slot] > 0)
			th_stop(c->actors[f->slot], SIGKILL, 5000);
		c->actors[f->slot] = 0;
		c->kills[f->slot]++;
		break;
	case F_START:
		start_actor(c, f->slot);
		break;
	case F_NATS:
		th_nats_restart(&c->nats);
		break;
	case F_PG_STOP:
		c->pg_down = true;
		th_pg_stop();
		break;
	case F_PG_START:
		th_pg_start();
		c->pg_down = false;
		break;
	}
	printf("chaos: %7.2f s  %s (took %.2f s)\n", f->done_at,
	       fault_text(f, buf, sizeof(buf)), now_s(c) - f->done_at);
	fflush(stdout);
}

static int next_fault;

static void run_due_faults(chaos *c, double upto)
{
	while (next_fault < c->nfaults && c->faults[next_fault].at <= upto)
		run_fault(c, &c->faults[next_fault++]);
}

/* ---- building the messages ------------------------------------------------ */

typedef struct evstore {
	vox_event ev;
	char eid[64], from[24], to[24], pi[48], rid[48];
} evstore;

static vox_str sv(const char *s)
{
	return (vox_str){s, strlen(s)};
}

static void phone_text(int org, int phone, char out[24])
{
	snprintf(out, 24, "+4477%02d%06d", org, phone);
}

static void clinic_text(int org, char out[24])
{
	snprintf(out, 24, "+44207%07d", 1830000 + org);
}

/* The valid event of step s (duplicates have their original's fields). */
static void build_event(chaos *c, const step *s, evstore *b)
{
	memset(b, 0, sizeof(*b));
	vox_event *ev = &b->ev;
	snprintf(b->eid, sizeof(b->eid), "cx-%s-%s-%d", c->run,
		 kind_name[s->kind], (int)s->ref);
	switch (s->kind) {
	case K_STARTED:
	case K_ENDED: {
		const wcall *w = &c->calls[s->ref];
		const org_exp *o = &c->orgs[w->org];
		char caller[24], clinic[24];
		phone_text(w->org, w->phone, caller);
		clinic_text(w->org, clinic);
		snprintf(b->from, sizeof(b->from), "%s", w->inbound ? caller : clinic);
		snprintf(b->to, sizeof(b->to), "%s", w->inbound ? clinic : caller);
		if (s->kind == K_STARTED) {
			ev->kind = VOX_CALL_STARTED;
			vox_call_started *e = &ev->u.call_started;
			e->event_id = sv(b->eid);
			memcpy(e->org_id.s, o->id, 37);
			memcpy(e->call_id.s, w->id, 37);
			e->direction = w->inbound ? VOX_DIR_INBOUND : VOX_DIR_OUTBOUND;
			e->from_number = sv(b->from);
			e->to_number = sv(b->to);
			e->started_at = (vox_time){w->start, 0, true};
		} else {
			ev->kind = VOX_CALL_ENDED;
			vox_call_ended *e = &ev->u.call_ended;
			e->event_id = sv(b->eid);
			memcpy(e->org_id.s, o->id, 37);
			memcpy(e->call_id.s, w->id, 37);
			e->ended_at = (vox_time){w->start + w->duration, 0, true};
			e->duration_seconds = w->duration;
			e->status = w->failed ? VOX_CALL_FAILED : VOX_CALL_COMPLETED;
			e->direction = w->inbound ? VOX_DIR_INBOUND : VOX_DIR_OUTBOUND;
			e->from_number = sv(b->from);
			e->to_number = sv(b->to);
			e->started_at = (vox_time){w->start, 0, true};
		}
		break;
	}
	case K_PAY: {
		const wpay *p = &c->pays[s->ref];
		ev->kind = VOX_PAYMENT_SUCCEEDED;
		vox_payment_succeeded *e = &ev->u.payment_succeeded;
		snprintf(b->pi, sizeof(b->pi), "pi_cx_%s_%d", c->run, (int)s->ref);
		e->event_id = sv(b->eid);
		memcpy(e->org_id.s, c->orgs[p->org].id, 37);
		e->stripe_payment_intent_id = sv(b->pi);
		e->amount_pence = p->amount;
		e->occurred_at = (vox_time){1795000000 + p->pos, 0, true};
		break;
	}
	case K_REFUND: {
		const wrefund *r = &c->refunds[s->ref];
		const wpay *p = &c->pays[r->pay];
		ev->kind = VOX_PAYMENT_REFUNDED;
		vox_payment_refunded *e = &ev->u.payment_refunded;
		snprintf(b->pi, sizeof(b->pi), "pi_cx_%s_%d", c->run, r->pay);
		snprintf(b->rid, sizeof(b->rid), "re_cx_%s_%d", c->run, (int)s->ref);
		e->event_id = sv(b->eid);
		memcpy(e->org_id.s, c->orgs[p->org].id, 37);
		e->stripe_refund_id = sv(b->rid);
		e->stripe_payment_intent_id = sv(b->pi);
		e->amount_pence = r->amount;
		e->occurred_at = (vox_time){1795000000 + p->pos + 1, 0, true};
		break;
	}
	case K_LEAD: {
		const wlead *l = &c->leads[s->ref];
		const wcall *w = &c->calls[l->call];
		ev->kind = VOX_LEAD_SCORED;
		vox_lead_scored *e = &ev->u.lead_scored;
		phone_text(w->org, w->phone, b->from);
		e->event_id = sv(b->eid);
		memcpy(e->org_id.s, c->orgs[w->org].id, 37);
		e->phone = sv(b->from);
		memcpy(e->call_id.s, w->id, 37);
		e->lead_score = l->score;
		e->scored_at = (vox_time){l->at, 0, true};
		break;
	}
	default:
		fail_msg("not a valid kind");
	}
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Subject and bytes of malformed message i. */
static void build_bad(chaos *c, size_t i, char *subject, size_t sublen,
		      vox_buf *out)
{
	const wbad *b = &c->bads[i];
	const char *org = c->orgs[b->org].id;
	char eid[64];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	snprintf(eid, sizeof(eid), "cx-%s-bad-%zu", c->run, i);
	switch (b->kind) {
	case BAD_NOT_MSGPACK:
		snprintf(subject, sublen, "call.started.%s", org);
		vox_buf_puts(out, "\xc1 this is not msgpack");
		break;
	case BAD_TRUNCATED:
	case BAD_RANGE:
		snprintf(subject, sublen, "call.ended.%s", org);
		msgpack_pack_map(&pk, 6);
		pack_str(&pk, "event_id");
		pack_str(&pk, eid);
		pack_str(&pk, "org_id");
		pack_str(&pk, org);
		pack_str(&pk, "call_id");
		{
			char cid[37];
			rnd_uuid(cid);
			pack_str(&pk, cid);
		}
		pack_str(&pk, "ended_at");
		msgpack_pack_int64(&pk, 1795000000000LL);
		pack_str(&pk, "duration_seconds");
		msgpack_pack_int64(&pk, b->kind == BAD_RANGE ? 90000 : 60);
		pack_str(&pk, "status");
		pack_str(&pk, "completed");
		vox_buf_append(out, sb.data, b->kind == BAD_TRUNCATED ? sb.size / 2 : sb.size);
		break;
	case BAD_MISSING:
		snprintf(subject, sublen, "payment.succeeded.%s", org);
		msgpack_pack_map(&pk, 4);
		pack_str(&pk, "event_id");
		pack_str(&pk, eid);
		pack_str(&pk, "org_id");
		pack_str(&pk, org);
		pack_str(&pk, "stripe_payment_intent_id");
		pack_str(&pk, eid);
		pack_str(&pk, "occurred_at");
		msgpack_pack_int64(&pk, 1795000000000LL);
		vox_buf_append(out, sb.data, sb.size);
		break;
	case BAD_WRONG_TYPE:
		snprintf(subject, sublen, "lead.scored.%s", org);
		msgpack_pack_map(&pk, 5);
		pack_str(&pk, "event_id");
		pack_str(&pk, eid);
		pack_str(&pk, "org_id");
		pack_str(&pk, org);
		pack_str(&pk, "phone");
		pack_str(&pk, "+447700900123");
		pack_str(&pk, "lead_score");
		pack_str(&pk, "high");
		pack_str(&pk, "scored_at");
		msgpack_pack_int64(&pk, 1795000000000LL);
		vox_buf_append(out, sb.data, sb.size);
		break;
	case BAD_ORG_MISMATCH:
	case BAD_UNKNOWN_ORG: {
		/* valid payloads: a payment naming the next org (which exists:
		 * if it were applied, a balance would be wrong), and a call of
		 * an org that does not exist */
		vox_event ev;
		vox_error err;
		unsigned char *body = NULL;
		size_t len = 0;
		char pi[48], from[24], to[24];
		memset(&ev, 0, sizeof(ev));
		if (b->kind == BAD_ORG_MISMATCH) {
			snprintf(subject, sublen, "payment.succeeded.%s", org);
			ev.kind = VOX_PAYMENT_SUCCEEDED;
			vox_payment_succeeded *e = &ev.u.payment_succeeded;
			snprintf(pi, sizeof(pi), "pi_cx_%s_bad%zu", c->run, i);
			e->event_id = sv(eid);
			memcpy(e->org_id.s, c->orgs[(b->org + 1) % NORGS].id, 37);
			e->stripe_payment_intent_id = sv(pi);
			e->amount_pence = 100000;
			e->occurred_at = (vox_time){1795000000, 0, true};
		} else {
			char ghost[37];
			rnd_uuid(ghost);
			snprintf(subject, sublen, "call.started.%s", ghost);
			ev.kind = VOX_CALL_STARTED;
			vox_call_started *e = &ev.u.call_started;
			phone_text(0, 999, from);
			clinic_text(0, to);
			e->event_id = sv(eid);
			memcpy(e->org_id.s, ghost, 37);
			rnd_uuid(e->call_id.s);
			e->direction = VOX_DIR_INBOUND;
			e->from_number = sv(from);
			e->to_number = sv(to);
			e->started_at = (vox_time){1795000000, 0, true};
		}
		assert_int_equal(vox_event_encode(&body, &len, &ev, &err), VOX_OK);
		vox_buf_append(out, body, len);
		free(body);
		break;
	}
	default:
		break;
	}
	msgpack_sbuffer_destroy(&sb);
}

/* ---- publishing ------------------------------------------------------------ */

/* Publish m (not consumed) until JetStream acks it; bounded. */
static void publish_msg(chaos *c, natsMsg *m)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 2000;
	for (int attempt = 0;; attempt++) {
		jsPubAck *pa = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_PublishMsg(&pa, c->js, m, &po, &jerr);
		if (s == NATS_OK) {
			if (pa->Duplicate)
				c->js_dropped++;
			jsPubAck_Destroy(pa);
			return;
		}
		c->retries++;
		if (attempt >= 100)
			fail_msg("publish to %s: %s (after %d attempts)",
				 natsMsg_GetSubject(m), natsStatus_GetText(s), attempt);
		th_sleep_ms(100);
	}
}

static void publish_event(chaos *c, const step *s)
{
	evstore b;
	natsMsg *m = NULL;
	vox_error err;
	build_event(c, s, &b);
	assert_int_equal(vox_event_to_msg(&m, &b.ev, &err), VOX_OK);
	if (s->dup == DUP_OTHER_ID) {
		char id[96];
		snprintf(id, sizeof(id), "again-%s", b.eid);
		assert_int_equal(natsMsgHeader_Set(m, "Nats-Msg-Id", id), NATS_OK);
	}
	publish_msg(c, m);
	natsMsg_Destroy(m);
}

static void publish_bad(chaos *c, size_t i)
{
	char subject[128], id[64];
	vox_buf body;
	natsMsg *m = NULL;
	vox_buf_init(&body);
	build_bad(c, i, subject, sizeof(subject), &body);
	snprintf(id, sizeof(id), "bad-%s-%zu", c->run, i);
	assert_int_equal(natsMsg_Create(&m, subject, NULL, body.data, (int)body.len),
			 NATS_OK);
	assert_int_equal(natsMsgHeader_Set(m, "Nats-Msg-Id", id), NATS_OK);
	publish_msg(c, m);
	natsMsg_Destroy(m);
	vox_buf_release(&body);
}

/* The payment of refund r is in the ledger (false also while Postgres
 * cannot be asked). */
static bool payment_applied(chaos *c, int r)
{
	char q[256];
	if (c->pg_down)
		return false;
	if (PQstatus(c->db) != CONNECTION_OK)
		PQreset(c->db);
	if (PQstatus(c->db) != CONNECTION_OK)
		return false;
	snprintf(q, sizeof(q),
		 "SELECT count(*) FROM credit_transactions WHERE type = 'topup'"
		 " AND stripe_payment_intent_id = 'pi_cx_%s_%d'",
		 c->run, c->refunds[r].pay);
	PGresult *res = PQexec(c->db, q);
	bool asked = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	bool ok = asked && strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	PQclear(res);
	if (!asked)
		PQreset(c->db); /* Postgres was restarted: a new session */
	return ok;
}

static void publish_all(chaos *c)
{
	step *deferred = NULL;
	size_t ndeferred = 0, capdeferred = 0;
	double per = c->window_s / (double)(c->nsteps ? c->nsteps : 1);
	for (size_t i = 0; i < c->nsteps; i++) {
		const step *s = &c->steps[i];
		/* paced over the window, faults run when due */
		double due = per * (double)i;
		for (;;) {
			double t = now_s(c);
			run_due_faults(c, t);
			if (t >= due)
				break;
			double wait = due - t;
			th_sleep_ms(wait > 0.05 ? 50 : (long)(wait * 1000) + 1);
		}
		if (s->kind == K_REFUND && !payment_applied(c, s->ref)) {
			GROW(deferred, ndeferred, capdeferred);
			deferred[ndeferred++] = *s;
			c->deferred++;
			continue;
		}
		if (s->kind == K_BAD)
			publish_bad(c, (size_t)s->ref);
		else
			publish_event(c, s);
		if (s->dup == DUP_SAME_ID)
			c->dup_same[s->kind]++;
		else if (s->dup == DUP_OTHER_ID)
			c->dup_other[s->kind]++;
		else
			c->pub_kind[s->kind]++;
	}
	run_due_faults(c, 1e9);
	/* the session of before the Postgres restart is gone */
	PQfinish(c->db);
	c->db = th_pg_connect(c->dsn);
	/* the refunds that had to wait for their payment: 60 s in all */
	int waits = 0;
	for (size_t i = 0; i < ndeferred; i++) {
		bool in = false;
		while (!(in = payment_applied(c, deferred[i].ref)) && waits++ < 600)
			th_sleep_ms(100);
		if (!in)
			fail_msg("payment of refund %d never applied", deferred[i].ref);
		publish_event(c, &deferred[i]);
		if (deferred[i].dup == DUP_SAME_ID)
			c->dup_same[K_REFUND]++;
		else if (deferred[i].dup == DUP_OTHER_ID)
			c->dup_other[K_REFUND]++;
		else
			c->pub_kind[K_REFUND]++;
	}
	free(deferred);
}

/* ---- after the storm -------------------------------------------------------- */

/* Every consumer has nothing pending and nothing unacknowledged and the
 * outbox is published, seen three times in a row; bounded. */
static void wait_drained(chaos *c, double *took)
{
	double t0 = now_s(c);
	int quiet = 0;
	for (int i = 0; i < 1200 && quiet < 3; i++) {
		bool q = true;
		for (size_t d = 0; d < VOX_NELEM(durables); d++)
			if (th_consumer_outstanding(c->js, "EVENTS", durables[d]) != 0)
				q = false;
		if (q && th_pg_int(c->db, "SELECT count(*) FROM vox_outbox"
					  " WHERE published_at IS NULL") != 0)
			q = false;
		quiet = q ? quiet + 1 : 0;
		th_sleep_ms(200);
	}
	*took = now_s(c) - t0;
}

/* Beyond the money invariants of invariants.h: what the actors emit. */
static const th_invariant emitted[] = {
	{"hot_lead_alerts: every row published",
	 "SELECT count(*) FROM hot_lead_alerts WHERE published_at IS NULL"},
	{"outbox: every row published",
	 "SELECT count(*) FROM vox_outbox WHERE published_at IS NULL"},
};

static void check_invariants(chaos *c)
{
	int bad = 0;
	for (size_t i = 0; i < th_ninvariants + VOX_NELEM(emitted); i++) {
		const th_invariant *inv = i < th_ninvariants
			? &th_invariants[i] : &emitted[i - th_ninvariants];
		long long v = th_pg_int(c->db, inv->sql);
		if (v != 0) {
			bad_check(c, "invariant violated (%lld rows): %s", v,
				  inv->name);
			bad++;
		}
	}
	say(c, "  billing.md invariants: %zu checked, %d violated",
	    th_ninvariants + VOX_NELEM(emitted), bad);
}

static int org_index(chaos *c, const char *id)
{
	for (int o = 0; o < NORGS; o++)
		if (strcmp(c->orgs[o].id, id) == 0)
			return o;
	return -1;
}

static void check_orgs(chaos *c)
{
	PGresult *r = th_pg_query(c->db,
		"SELECT o.id, o.wallet_balance_pence, o.unbilled_pence,"
		" (SELECT count(*) FROM credit_transactions t WHERE t.org_id = o.id),"
		" (SELECT COALESCE(sum(amount_pence), 0) FROM credit_transactions t"
		"   WHERE t.org_id = o.id AND t.type = 'topup'),"
		" (SELECT COALESCE(-sum(amount_pence), 0) FROM credit_transactions t"
		"   WHERE t.org_id = o.id AND t.type = 'refund'),"
		" (SELECT COALESCE(sum(charge_pence), 0) FROM call_charges k"
		"   WHERE k.org_id = o.id),"
		" (SELECT count(*) FROM calls k WHERE k.org_id = o.id),"
		" (SELECT count(*) FROM calls k WHERE k.org_id = o.id"
		"   AND k.status IN ('completed', 'failed')),"
		" (SELECT COALESCE(sum(duration_seconds), 0) FROM calls k"
		"   WHERE k.org_id = o.id)"
		" FROM organizations o");
	int ok = 0;
	if (PQntuples(r) != NORGS)
		bad_check(c, "%d organizations, want %d", PQntuples(r), NORGS);
	for (int i = 0; i < PQntuples(r); i++) {
		int o = org_index(c, PQgetvalue(r, i, 0));
		if (o < 0) {
			bad_check(c, "unknown org %s", PQgetvalue(r, i, 0));
			continue;
		}
		org_exp *e = &c->orgs[o];
		long long got[9];
		for (int k = 0; k < 9; k++)
			got[k] = strtoll(PQgetvalue(r, i, k + 1), NULL, 10);
		long long want[9] = {e->balance, e->unbilled, e->ledger_rows,
				     e->topups, e->refunds, e->charges,
				     e->ncalls, e->ncalls, e->durations};
		static const char *const what[9] = {
			"balance", "unbilled", "ledger rows", "top-ups", "refunds",
			"charges", "calls", "ended calls", "call seconds"};
		bool good = true;
		for (int k = 0; k < 9; k++) {
			if (got[k] != want[k]) {
				bad_check(c, "org %d (%s%s): %s %lld, expected %lld", o,
					  e->id, e->debt ? ", debt" : "", what[k],
					  got[k], want[k]);
				good = false;
			}
		}
		ok += good;
	}
	PQclear(r);
	say(c, "  orgs matching the driver's figures (balance, unbilled, ledger"
	       " rows, top-ups, refunds, charges, calls): %d/%d", ok, NORGS);
}

static const char *hdr(natsMsg *m, const char *name)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, name, &v) != NATS_OK)
		return NULL;
	return v;
}

static uint64_t last_seq(chaos *c, const char *stream)
{
	jsStreamInfo *si = NULL;
	assert_int_equal(js_GetStreamInfo(&si, c->js, stream, NULL, NULL), NATS_OK);
	uint64_t v = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return v;
}

static void check_dlq(chaos *c)
{
	uint64_t last = last_seq(c, "DLQ");
	long unexpected = 0, noreason = 0, letters = 0;
	char prefix[64];
	int plen = snprintf(prefix, sizeof(prefix), "bad-%s-", c->run);
	for (uint64_t seq = 1; seq <= last; seq++) {
		natsMsg *m = NULL;
		if (js_GetMsg(&m, c->js, "DLQ", seq, NULL, NULL) != NATS_OK)
			continue;
		letters++;
		const char *orig = hdr(m, "Vox-Original-Msg-Id");
		const char *reason = hdr(m, "Vox-Error-Reason");
		const char *text = hdr(m, "Vox-Error");
		if (!reason || !*reason || !text || !*text)
			noreason++;
		if (orig && strncmp(orig, prefix, (size_t)plen) == 0) {
			long i = strtol(orig + plen, NULL, 10);
			if (i >= 0 && (size_t)i < c->nbads) {
				c->bads[i].found++;
				if (reason)
					snprintf(c->bads[i].code, sizeof(c->bads[i].code),
						 "%s", reason);
			}
		} else {
			unexpected++;
			if (unexpected <= 5)
				bad_check(c, "a valid message was dead-lettered: %s"
					  " (%s: %s)", orig ? orig : "?",
					  reason ? reason : "?", text ? text : "?");
		}
		natsMsg_Destroy(m);
	}
	long missing = 0;
	for (size_t i = 0; i < c->nbads; i++) {
		if (c->bads[i].found == 0) {
			missing++;
			if (missing <= 5)
				bad_check(c, "malformed message %zu (%s) not in the DLQ",
					  i, bad_name[c->bads[i].kind]);
		}
	}
	if (unexpected)
		bad_check(c, "%ld valid messages dead-lettered", unexpected);
	if (missing)
		bad_check(c, "%ld malformed messages missing from the DLQ", missing);
	if (noreason)
		bad_check(c, "%ld dead letters without a reason", noreason);
	say(c, "  DLQ: %ld dead letters; %zu/%zu malformed messages found, each"
	       " with Vox-Error-Reason; %ld valid messages dead-lettered",
	    letters, c->nbads - (size_t)missing, c->nbads, unexpected);
	for (int k = 0; k < BAD_COUNT; k++) {
		long n = 0;
		const char *code = "";
		for (size_t i = 0; i < c->nbads; i++)
			if (c->bads[i].kind == k) {
				n++;
				if (c->bads[i].code[0])
					code = c->bads[i].code;
			}
		say(c, "    %-14s %5ld  reason %s", bad_name[k], n, code);
	}
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *key3(const char *org, const char *contact, const char *call)
{
	char *k = vox_malloc(3 * 37 + 3);
	snprintf(k, 3 * 37 + 3, "%s|%s|%s", org, contact, call);
	return k;
}

static void check_alerts(chaos *c)
{
	/* contacts: (org, phone) -> id */
	PGresult *ct = th_pg_query(c->db, "SELECT org_id, phone, id FROM contacts");
	/* expected hot keys: (org, contact of the phone, call), once each */
	char **want = NULL;
	size_t nwant = 0, capwant = 0;
	for (size_t i = 0; i < c->nleads; i++) {
		const wlead *l = &c->leads[i];
		const wcall *w = &c->calls[l->call];
		if (l->score < HOT)
			continue;
		char phone[24];
		const char *contact = "?";
		phone_text(w->org, w->phone, phone);
		for (int k = 0; k < PQntuples(ct); k++)
			if (strcmp(PQgetvalue(ct, k, 1), phone) == 0 &&
			    strcmp(PQgetvalue(ct, k, 0), c->orgs[w->org].id) == 0)
				contact = PQgetvalue(ct, k, 2);
		char *k = key3(c->orgs[w->org].id, contact, w->id);
		bool seen = false;
		for (size_t j = 0; j < nwant && !seen; j++)
			seen = strcmp(want[j], k) == 0;
		if (seen) {
			free(k);
			continue;
		}
		GROW(want, nwant, capwant);
		want[nwant++] = k;
	}
	PQclear(ct);
	/* what the ALERTS stream holds */
	char **got = NULL;
	size_t ngot = 0, capgot = 0;
	long low = 0, debt = 0, other = 0;
	uint64_t last = last_seq(c, "ALERTS");
	for (uint64_t seq = 1; seq <= last; seq++) {
		natsMsg *m = NULL;
		if (js_GetMsg(&m, c->js, "ALERTS", seq, NULL, NULL) != NATS_OK)
			continue;
		vox_event ev;
		vox_error err;
		if (vox_event_decode_subject(&ev, natsMsg_GetSubject(m), natsMsg_GetData(m),
					     (size_t)natsMsg_GetDataLength(m),
					     &err) != VOX_OK) {
			bad_check(c, "alert %s undecodable: %s", natsMsg_GetSubject(m),
				  err.message);
			natsMsg_Destroy(m);
			continue;
		}
		if (ev.kind == VOX_ALERT_HOT_LEAD) {
			GROW(got, ngot, capgot);
			got[ngot++] = key3(ev.u.hot_lead.org_id.s, ev.u.hot_lead.contact_id.s,
					   ev.u.hot_lead.call_id.s);
		} else if (ev.kind == VOX_ALERT_LOW_BALANCE || ev.kind == VOX_ALERT_DEBT_LIMIT) {
			int o = org_index(c, ev.u.wallet.org_id.s);
			if (o < 0)
				other++;
			else if (ev.kind == VOX_ALERT_LOW_BALANCE) {
				c->orgs[o].got_low_alerts++;
				low++;
			} else {
				c->orgs[o].got_debt_alerts++;
				debt++;
			}
		} else {
			other++;
		}
		natsMsg_Destroy(m);
	}
	if (want)
		qsort(want, nwant, sizeof(char *), str_cmp);
	if (got)
		qsort(got, ngot, sizeof(char *), str_cmp);
	/* merge: every expected key exactly once, nothing else */
	size_t i = 0, j = 0;
	long exact = 0, missing = 0, extra = 0, repeated = 0;
	while (i < nwant || j < ngot) {
		int cmp = i >= nwant ? 1 : j >= ngot ? -1 : strcmp(want[i], got[j]);
		if (cmp < 0) {
			if (++missing <= 5)
				bad_check(c, "no hot-lead alert for %s", want[i]);
			i++;
		} else if (cmp > 0) {
			if (++extra <= 5)
				bad_check(c, "unexpected hot-lead alert %s", got[j]);
			j++;
		} else {
			size_t n = 0;
			while (j < ngot && strcmp(want[i], got[j]) == 0) {
				n++;
				j++;
			}
			if (n == 1)
				exact++;
			else if (++repeated <= 5)
				bad_check(c, "%zu hot-lead alerts for %s", n, want[i]);
			i++;
		}
	}
	if (missing || extra || repeated)
		bad_check(c, "hot-lead alerts: %ld missing, %ld unexpected, %ld repeated",
			  missing, extra, repeated);
	long long rows = th_pg_int(c->db, "SELECT count(*) FROM hot_lead_alerts");
	if (rows != (long long)nwant)
		bad_check(c, "%lld hot_lead_alerts rows, want %zu", rows, nwant);
	say(c, "  ALERTS: %zu hot-lead alerts for %zu expected (org, contact, call):"
	       " %ld exactly once, %ld missing, %ld repeated, %ld unexpected",
	    ngot, nwant, exact, missing, repeated, extra);
	/* wallet alerts that do not depend on the order of events */
	int debt_ok = 0, ndebt = 0;
	for (int o = 0; o < NORGS; o++) {
		org_exp *e = &c->orgs[o];
		if (e->debt) {
			ndebt++;
			if (e->got_debt_alerts != e->debt_alerts)
				bad_check(c, "debt org %d: %d debt-limit alerts, want %d", o,
					  e->got_debt_alerts, e->debt_alerts);
			else if (e->got_low_alerts != e->low_alerts)
				bad_check(c, "debt org %d: %d low-balance alerts, want %d", o,
					  e->got_low_alerts, e->low_alerts);
			else
				debt_ok++;
		} else if (e->got_debt_alerts != 0) {
			bad_check(c, "funded org %d: %d debt-limit alerts, want 0", o,
				  e->got_debt_alerts);
		}
	}
	if (other)
		bad_check(c, "%ld other alerts", other);
	say(c, "  ALERTS: %ld debt-limit, %ld low-balance; debt orgs with exactly one"
	       " of each: %d/%d; funded orgs with none beyond the debt limit",
	    debt, low, debt_ok, ndebt);
	for (size_t k = 0; k < nwant; k++)
		free(want[k]);
	for (size_t k = 0; k < ngot; k++)
		free(got[k]);
	free(want);
	free(got);
}

static void check_consumers(chaos *c)
{
	int ok = 0;
	for (size_t d = 0; d < VOX_NELEM(durables); d++) {
		jsConsumerInfo *ci = NULL;
		if (js_GetConsumerInfo(&ci, c->js, "EVENTS", durables[d], NULL, NULL) !=
		    NATS_OK) {
			bad_check(c, "consumer %s: no info", durables[d]);
			continue;
		}
		if (ci->NumPending != 0 || ci->NumAckPending != 0)
			bad_check(c, "consumer %s: NumPending %" PRIu64
				  ", NumAckPending %" PRId64, durables[d],
				  ci->NumPending, (int64_t)ci->NumAckPending);
		else
			ok++;
		say(c, "    %-22s delivered up to stream seq %" PRIu64
		       ", pending %" PRIu64 ", ack pending %" PRId64,
		    durables[d], ci->Delivered.Stream, ci->NumPending,
		    (int64_t)ci->NumAckPending);
		jsConsumerInfo_Destroy(ci);
	}
	say(c, "  consumers with nothing pending and nothing unacked: %d/%zu", ok,
	    VOX_NELEM(durables));
}

/* ---- the test ---------------------------------------------------------------- */

static int setup(void **state)
{
	chaos *c = vox_calloc(1, sizeof(*c));
	vox_buf_init(&c->report);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	chaos *c = *state;
	for (int s = 0; s < NSLOTS; s++)
		if (c->actors[s] > 0)
			th_stop(c->actors[s], SIGKILL, 5000);
	if (c->pg_down)
		th_pg_start(); /* the other tests share the cluster */
	if (c->js)
		jsCtx_Destroy(c->js);
	if (c->nc)
		natsConnection_Destroy(c->nc);
	if (c->nats.pid > 0)
		th_nats_stop(&c->nats);
	if (c->db)
		PQfinish(c->db);
	free(c->calls);
	free(c->pays);
	free(c->refunds);
	free(c->leads);
	free(c->bads);
	free(c->steps);
	vox_buf_release(&c->report);
	free(c);
	return 0;
}

static long env_long(const char *name, long def, long lo, long hi)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end = NULL;
	long n = strtol(v, &end, 10);
	if (*end || n < lo || n > hi)
		fail_msg("%s must be %ld..%ld", name, lo, hi);
	return n;
}

static void write_report(chaos *c)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/chaos-report.txt", th_env("VOX_TEST_TMP"));
	FILE *f = fopen(path, "w");
	if (f) {
		fwrite(c->report.data, 1, c->report.len, f);
		fclose(f);
	}
}

static void test_chaos(void **state)
{
	chaos *c = *state;
	const char *seed_env = getenv("VOX_CHAOS_SEED");
	if (seed_env && *seed_env) {
		char *end = NULL;
		c->seed = strtoull(seed_env, &end, 10);
		assert_true(*end == '\0');
	} else {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		c->seed = ((uint64_t)t.tv_sec * 1000003ULL) ^ (uint64_t)t.tv_nsec ^
			  ((uint64_t)getpid() << 20);
		c->seed %= 1000000000000ULL;
	}
	c->nmsgs = env_long("VOX_CHAOS_EVENTS", 20000, 1000, 10000000);
	c->window_s = c->nmsgs / 800.0 > 45.0 ? c->nmsgs / 800.0 : 45.0;
	rng_state = c->seed;
	snprintf(c->run, sizeof(c->run), "%08x", (unsigned)(rng() & 0xffffffffu));
	plan_workload(c);
	qsort(c->steps, c->nsteps, sizeof(step), step_cmp);
	expect_orgs(c);
	plan_faults(c);

	say(c, "== chaos report");
	say(c, "seed %" PRIu64 " (replay: VOX_CHAOS_SEED=%" PRIu64
	       " VOX_CHAOS_EVENTS=%ld)", c->seed, c->seed, c->nmsgs);
	say(c, "workload: %zu messages over %.0f s, %d orgs (%d debt orgs, calls only)",
	    c->nsteps, c->window_s, NORGS, NORGS / 10);
	say(c, "fault schedule (seconds from the first publish):");
	for (int i = 0; i < c->nfaults; i++) {
		char buf[96];
		say(c, "  %7.2f  %s", c->faults[i].at,
		    fault_text(&c->faults[i], buf, sizeof(buf)));
	}

	/* servers, database, actors */
	th_nats_start(&c->nats);
	th_pg_migrated_db("chaos", c->dsn, sizeof(c->dsn));
	c->db = th_pg_connect(c->dsn);
	th_pg_ok(c->db, "CREATE TABLE it_opening (org_id uuid PRIMARY KEY,"
			" opening bigint NOT NULL)");
	for (int o = 0; o < NORGS; o++) {
		th_pg_okf(c->db,
			  "INSERT INTO organizations (id, name, email, wallet_balance_pence,"
			  " debt_limit_pence, low_balance_pence) VALUES ('%s', 'chaos %d',"
			  " 'chaos%d@example.com', %" PRId64 ", %d, %d)",
			  c->orgs[o].id, o, o, c->orgs[o].opening, DEBT, LOW);
		th_pg_okf(c->db, "INSERT INTO it_opening VALUES ('%s', %" PRId64 ")",
			  c->orgs[o].id, c->orgs[o].opening);
	}
	snprintf(c->env_url, sizeof(c->env_url), "VOX_NATS_URL=%s", c->nats.url);
	snprintf(c->env_dsn, sizeof(c->env_dsn), "VOX_PG_DSN=%s", c->dsn);
	for (int s = 0; s < NSLOTS; s++) {
		snprintf(c->logs[s], sizeof(c->logs[s]), "%s/chaos-%ld-%d-%s.log",
			 th_env("VOX_TEST_TMP"), (long)getpid(), s, slot_bin[s]);
		start_actor(c, s);
	}
	for (int s = 0; s < NSLOTS; s++)
		wait_started(c, s, 1);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 5000;
	th_js_connect(c->nats.url, &jo, &c->nc, &c->js);

	/* the storm */
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	publish_all(c);
	double published_at = now_s(c);
	for (int s = 0; s < NSLOTS; s++)
		if (!th_alive(c->actors[s]))
			fail_msg("%s#%d is not running (see %s)", slot_bin[s], s, c->logs[s]);
	double drain_s = 0;
	wait_drained(c, &drain_s);

	/* the report */
	say(c, "published (originals; duplicates with the same Nats-Msg-Id /"
	       " with another one):");
	long total = 0;
	for (int k = 0; k < K_COUNT; k++) {
		say(c, "  %-18s %7ld  dup %6ld / %6ld", kind_name[k], c->pub_kind[k],
		    c->dup_same[k], c->dup_other[k]);
		total += c->pub_kind[k] + c->dup_same[k] + c->dup_other[k];
	}
	say(c, "  total %ld messages in %.1f s; JetStream dropped %ld as duplicates;"
	       " %ld publish retries; %ld refunds waited for their payment",
	    total, published_at, c->js_dropped, c->retries, c->deferred);
	say(c, "  %zu calls, %zu top-ups, %zu refunds, %zu lead scores",
	    c->ncalls, c->npays, c->nrefunds, c->nleads);
	say(c, "faults injected (seconds from the first publish):");
	for (int i = 0; i < c->nfaults; i++) {
		char buf[96];
		say(c, "  %7.2f  %s", c->faults[i].done_at,
		    fault_text(&c->faults[i], buf, sizeof(buf)));
	}
	say(c, "  kill -9: vox-calls %d, vox-billing#1 %d, vox-billing#2 %d,"
	       " vox-leads %d; 1 nats-server restart; 1 postgres restart",
	    c->kills[0], c->kills[1], c->kills[2], c->kills[3]);
	say(c, "what the actors logged (starts, postgres outages, nats reconnects,"
	       " batches retried, dead letters):");
	for (int s = 0; s < NSLOTS; s++)
		say(c, "  %-12s#%d %2d %2d %2d %3d %5d", slot_bin[s], s,
		    th_count_in_log(c->logs[s], "msg=\"started\""),
		    th_count_in_log(c->logs[s], "msg=\"database fault, messages wait"),
		    th_count_in_log(c->logs[s], "msg=\"nats reconnected\""),
		    th_count_in_log(c->logs[s], "msg=\"batch not applied"),
		    th_count_in_log(c->logs[s], "msg=\"dead letter\""));
	say(c, "drained %.1f s after the last publish", drain_s);
	say(c, "checks:");
	check_consumers(c);
	check_invariants(c);
	check_orgs(c);
	check_dlq(c);
	check_alerts(c);
	for (int s = 0; s < NSLOTS; s++)
		if (!th_alive(c->actors[s]))
			bad_check(c, "%s#%d stopped (see %s)", slot_bin[s], s, c->logs[s]);
	say(c, "result: %s (%d failed checks; seed %" PRIu64 ")",
	    c->failures ? "FAIL" : "PASS", c->failures, c->seed);
	write_report(c);
	assert_int_equal(c->failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chaos, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
