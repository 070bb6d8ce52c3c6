/*
 * cmd_demo.c - `voxctl demo`: a simulated telephony bridge and Stripe
 * bridge publishing a realistic day for a few clinics, then a summary of
 * what vox made of it.
 *
 * 1. Creates the clinics in Postgres (as `voxctl org create` does, with
 *    opening balances recorded in the ledger).
 * 2. Subscribes to alert.> on core NATS, notes where the DLQ stream ends.
 * 3. Publishes with the public client (vox/client.h): call.started /
 *    call.ended pairs of varied lengths (some failed), a Stripe top-up per
 *    clinic and a refund, lead.scored events (some hot), a few events sent
 *    twice with the same event_id (JetStream drops the repeat) and a few
 *    malformed messages sent raw (the actors dead-letter them).
 * 4. Waits (bounded) until the actors' durable consumers on EVENTS have
 *    nothing pending and the outbox is published.
 * 5. Prints a JSON summary: per clinic the wallet and ledger figures,
 *    alerts received, dead letters, and every dead letter with its reason.
 *
 * --seed makes the day repeatable (durations, amounts, scores, which
 * events are repeated or malformed); ids are fresh per run so that runs
 * never collide.
 */
#include "voxctl/org.h"

#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "core/codec.h"
#include "io/pg.h"
#include "vox/client.h"

#define MAX_ORGS 20
#define MAX_CALLS 500
#define MAX_DEAD 1000

static const char *const durables[] = {"vox-calls", "vox-billing-calls",
				       "vox-billing-payments", "vox-leads"};

static const char *const clinics[] = {
	"Harley Street Dental", "Riverside Physio", "Camden Family Clinic",
	"Leeds Smile Studio", "Bristol Skin Centre", "Oxford Eye Care",
	"Brighton Osteopathy", "York Hearing Clinic",
};
static const char *const callers[] = {
	"Priya Shah", "Tom Wright", "Aisha Khan", "James O'Neill", "Mei Chen",
	"Oliver Hughes", "Sofia Rossi", "Daniel Okafor", "Emma Clarke",
	"Lucas Silva",
};
static const char *const summaries[] = {
	"New patient booked a check-up for Tuesday 2:30pm.",
	"Asked about prices for teeth whitening; will call back.",
	"Rescheduled an appointment to next week.",
	"Asked for directions and parking.",
	"Urgent: severe pain since last night, booked for today.",
	"Enquired about Invisalign finance options.",
	"Cancelled tomorrow's appointment.",
};
static const char *const interests[] = {
	"teeth whitening", "Invisalign", "implants", "physiotherapy",
	"check-up", "laser treatment",
};

/* ---- a deterministic generator (splitmix64) ----------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static int64_t rnd(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
}

/* ---- the day's plan ------------------------------------------------------ */

enum step_type { STEP_EVENT, STEP_RAW };

typedef struct step {
	enum step_type type;
	int org;
	bool repeat; /* publish a second time with the same event_id */
	vox_event ev;
	char eid[64], from[24], to[24], name[48], pi[48], rid[48];
	/* raw steps: subject, bytes, what is wrong with them */
	char subject[128];
	vox_buf raw;
	char msgid[64];
} step;

typedef struct org_state {
	char id[37];
	char name[64];
	char email[96];
	int64_t opening;
	int alerts_hot, alerts_low, alerts_debt;
	int dead;
} org_state;

typedef struct demo {
	int norgs, ncalls, wait_s;
	uint64_t seed;
	bool progress_bar, progress_lines;
	char run[9];
	org_state orgs[MAX_ORGS];
	step *steps;
	size_t nsteps, capsteps;
	int published, duplicates, malformed;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *alerts;
	PGconn *db;
	uint64_t dlq_start;
} demo;

static step *add_step(demo *d, int org, enum step_type t)
{
	if (d->nsteps == d->capsteps) {
		d->capsteps = d->capsteps ? d->capsteps * 2 : 256;
		d->steps = vox_realloc(d->steps, d->capsteps * sizeof(step));
	}
	step *s = &d->steps[d->nsteps++];
	memset(s, 0, sizeof(*s));
	s->type = t;
	s->org = org;
	vox_buf_init(&s->raw);
	return s;
}

static vox_str str_of(const char *s)
{
	return (vox_str){s, strlen(s)};
}

static void random_uuid(vox_uuid *u)
{
	unsigned char b[16];
	randombytes_buf(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(u->s, sizeof(u->s),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
		 b[11], b[12], b[13], b[14], b[15]);
}

static void set_eid(demo *d, step *s, const char *kind)
{
	snprintf(s->eid, sizeof(s->eid), "demo-%s-%zu-%s", d->run, d->nsteps, kind);
}

/* Malformed messages, one of three kinds, each dead-lettered by one
 * actor: bytes that are not msgpack (vox-calls), a lead score out of
 * range (vox-leads), a payment whose org_id is not its subject's
 * (vox-billing). */
static void plan_malformed(demo *d, int o, int kind, int64_t t)
{
	org_state *os = &d->orgs[o];
	step *s = add_step(d, o, STEP_RAW);
	snprintf(s->msgid, sizeof(s->msgid), "demo-%s-%zu-bad", d->run, d->nsteps);
	if (kind == 0) {
		snprintf(s->subject, sizeof(s->subject), "call.started.%s", os->id);
		vox_buf_puts(&s->raw, "{\"event_id\": \"json is not msgpack\"}");
	} else if (kind == 1) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		vox_time at = {t, 0, true};
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		snprintf(s->subject, sizeof(s->subject), "lead.scored.%s", os->id);
		msgpack_pack_map(&pk, 5);
		msgpack_pack_str_with_body(&pk, "event_id", 8);
		msgpack_pack_str_with_body(&pk, s->msgid, strlen(s->msgid));
		msgpack_pack_str_with_body(&pk, "org_id", 6);
		msgpack_pack_str_with_body(&pk, os->id, strlen(os->id));
		msgpack_pack_str_with_body(&pk, "phone", 5);
		msgpack_pack_str_with_body(&pk, "+447700900999", 13);
		msgpack_pack_str_with_body(&pk, "lead_score", 10);
		msgpack_pack_int64(&pk, 150);
		msgpack_pack_str_with_body(&pk, "scored_at", 9);
		vox_time_pack(&pk, &at);
		vox_buf_append(&s->raw, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
	} else {
		vox_event ev;
		vox_error err;
		unsigned char *body = NULL;
		size_t len = 0;
		memset(&ev, 0, sizeof(ev));
		ev.kind = VOX_PAYMENT_SUCCEEDED;
		vox_payment_succeeded *p = &ev.u.payment_succeeded;
		p->event_id = str_of(s->msgid);
		random_uuid(&p->org_id); /* not the subject's org */
		snprintf(s->pi, sizeof(s->pi), "pi_demo_%s_bad%zu", d->run, d->nsteps);
		p->stripe_payment_intent_id = str_of(s->pi);
		p->amount_pence = 1000;
		p->occurred_at = (vox_time){t, 0, true};
		snprintf(s->subject, sizeof(s->subject), "payment.succeeded.%s",
			 os->id);
		if (vox_event_encode(&body, &len, &ev, &err) == VOX_OK)
			vox_buf_append(&s->raw, body, len);
		free(body);
	}
}

static void plan_day(demo *d)
{
	int64_t now = (int64_t)time(NULL);
	int64_t day = now - 10 * 3600; /* the day: the last ten hours */
	int malformed_total = 3 + d->norgs * d->ncalls / 20;

	for (int o = 0; o < d->norgs; o++) {
		org_state *os = &d->orgs[o];
		int64_t gap = 36000 / d->ncalls;
		char clinic_no[24];
		snprintf(clinic_no, sizeof(clinic_no), "+44207183%04d", (int)rnd(0, 9999));
		for (int k = 0; k < d->ncalls; k++) {
			int64_t start = day + k * gap + rnd(0, gap / 2);
			if (k == d->ncalls / 2) {
				step *s = add_step(d, o, STEP_EVENT);
				set_eid(d, s, "payment");
				snprintf(s->pi, sizeof(s->pi), "pi_demo_%s_%d", d->run, o);
				s->ev.kind = VOX_PAYMENT_SUCCEEDED;
				vox_payment_succeeded *p = &s->ev.u.payment_succeeded;
				p->event_id = str_of(s->eid);
				p->org_id = (vox_uuid){{0}};
				snprintf(p->org_id.s, sizeof(p->org_id.s), "%s", os->id);
				p->stripe_payment_intent_id = str_of(s->pi);
				p->amount_pence = rnd(20, 60) * 100;
				p->description = str_of("Wallet top-up");
				p->occurred_at = (vox_time){start - 60, 0, true};
				s->repeat = true; /* Stripe retries webhooks */
				if (o == 0) {
					int64_t amount = p->amount_pence;
					char pi[48];
					snprintf(pi, sizeof(pi), "%s", s->pi);
					step *r = add_step(d, o, STEP_EVENT);
					set_eid(d, r, "refund");
					snprintf(r->pi, sizeof(r->pi), "%s", pi);
					snprintf(r->rid, sizeof(r->rid), "re_demo_%s_%d", d->run, o);
					r->ev.kind = VOX_PAYMENT_REFUNDED;
					vox_payment_refunded *f = &r->ev.u.payment_refunded;
					f->event_id = str_of(r->eid);
					snprintf(f->org_id.s, sizeof(f->org_id.s), "%s", os->id);
					f->stripe_refund_id = str_of(r->rid);
					f->stripe_payment_intent_id = str_of(r->pi);
					f->amount_pence = amount / 4;
					f->occurred_at = (vox_time){start - 30, 0, true};
				}
			}
			vox_uuid call;
			random_uuid(&call);
			const char *who = callers[rnd(0, VOX_NELEM(callers) - 1)];
			int64_t roll = rnd(0, 99), dur;
			bool failed = roll < 12;
			if (failed)
				dur = rnd(0, 20);
			else if (roll < 40)
				dur = rnd(5, 60);
			else if (roll < 85)
				dur = rnd(60, 300);
			else
				dur = rnd(300, 900);

			step *s = add_step(d, o, STEP_EVENT);
			set_eid(d, s, "started");
			snprintf(s->from, sizeof(s->from), "+447700900%03d", (int)rnd(0, 999));
			snprintf(s->to, sizeof(s->to), "%s", clinic_no);
			snprintf(s->name, sizeof(s->name), "%s", who);
			s->ev.kind = VOX_CALL_STARTED;
			vox_call_started *cs = &s->ev.u.call_started;
			cs->event_id = str_of(s->eid);
			snprintf(cs->org_id.s, sizeof(cs->org_id.s), "%s", os->id);
			cs->call_id = call;
			cs->direction = rnd(0, 9) < 8 ? VOX_DIR_INBOUND : VOX_DIR_OUTBOUND;
			cs->from_number = str_of(s->from);
			cs->to_number = str_of(s->to);
			cs->caller_name = str_of(s->name);
			cs->started_at = (vox_time){start, 0, true};
			s->repeat = rnd(0, 9) == 0;
			char from[24];
			snprintf(from, sizeof(from), "%s", s->from);

			step *e = add_step(d, o, STEP_EVENT);
			set_eid(d, e, "ended");
			e->ev.kind = VOX_CALL_ENDED;
			vox_call_ended *ce = &e->ev.u.call_ended;
			ce->event_id = str_of(e->eid);
			snprintf(ce->org_id.s, sizeof(ce->org_id.s), "%s", os->id);
			ce->call_id = call;
			ce->ended_at = (vox_time){start + dur, 0, true};
			ce->duration_seconds = dur;
			ce->status = failed ? VOX_CALL_FAILED : VOX_CALL_COMPLETED;
			if (!failed) {
				ce->summary = str_of(summaries[rnd(0, VOX_NELEM(summaries) - 1)]);
				ce->sentiment_label = (vox_sentiment)rnd(1, 3);
				ce->has_sentiment_score = true;
				ce->sentiment_score = (double)rnd(5, 95) / 100.0;
				ce->sentiment_urgency = (vox_urgency)rnd(1, 4);
			}
			e->repeat = rnd(0, 7) == 0; /* a bridge retried */

			if (!failed && dur >= 30 && rnd(0, 2) == 0) {
				step *l = add_step(d, o, STEP_EVENT);
				set_eid(d, l, "lead");
				snprintf(l->from, sizeof(l->from), "%s", from);
				snprintf(l->name, sizeof(l->name), "%s", who);
				l->ev.kind = VOX_LEAD_SCORED;
				vox_lead_scored *ls = &l->ev.u.lead_scored;
				ls->event_id = str_of(l->eid);
				snprintf(ls->org_id.s, sizeof(ls->org_id.s), "%s", os->id);
				ls->phone = str_of(l->from);
				ls->call_id = call;
				ls->lead_score = rnd(20, 99);
				ls->lead_name = str_of(l->name);
				ls->service_interest =
					str_of(interests[rnd(0, VOX_NELEM(interests) - 1)]);
				ls->scored_at = (vox_time){start + dur + 30, 0, true};
				l->repeat = rnd(0, 9) == 0;
			}
		}
	}
	for (int m = 0; m < malformed_total; m++)
		plan_malformed(d, m % d->norgs, m % 3, now - 60);
}

/* The views of an event point into its step: fix them after the steps
 * array moved (realloc). */
static void fix_views(step *s)
{
	vox_event *ev = &s->ev;
	switch (ev->kind) {
	case VOX_CALL_STARTED:
		ev->u.call_started.event_id = str_of(s->eid);
		ev->u.call_started.from_number = str_of(s->from);
		ev->u.call_started.to_number = str_of(s->to);
		ev->u.call_started.caller_name = str_of(s->name);
		break;
	case VOX_CALL_ENDED:
		ev->u.call_ended.event_id = str_of(s->eid);
		break;
	case VOX_PAYMENT_SUCCEEDED:
		ev->u.payment_succeeded.event_id = str_of(s->eid);
		ev->u.payment_succeeded.stripe_payment_intent_id = str_of(s->pi);
		break;
	case VOX_PAYMENT_REFUNDED:
		ev->u.payment_refunded.event_id = str_of(s->eid);
		ev->u.payment_refunded.stripe_refund_id = str_of(s->rid);
		ev->u.payment_refunded.stripe_payment_intent_id = str_of(s->pi);
		break;
	case VOX_LEAD_SCORED:
		ev->u.lead_scored.event_id = str_of(s->eid);
		ev->u.lead_scored.phone = str_of(s->from);
		ev->u.lead_scored.lead_name = str_of(s->name);
		break;
	default:
		break;
	}
}

/* ---- publishing ---------------------------------------------------------- */

static void progress(demo *d, size_t done, size_t total)
{
	if (!d->progress_bar)
		return;
	voxctl_progress("demo", done, total);
	if (done == total)
		voxctl_progress_end();
}

static int publish_all(demo *d)
{
	for (size_t i = 0; i < d->nsteps; i++) {
		step *s = &d->steps[i];
		if (s->type == STEP_EVENT) {
			fix_views(s);
			for (int n = 0; n < (s->repeat ? 2 : 1); n++) {
				vox_pub_ack ack;
				vox_error err;
				vox_status st = vox_publish(&ack, d->js, &s->ev, 5000, &err);
				if (st == VOX_E_INVALID) {
					voxctl_err("demo: the simulated %s was refused: %s"
						   " (a bug in voxctl demo)",
						   vox_event_kind_name(s->ev.kind), err.message);
					return EXIT_SERVER;
				}
				if (st != VOX_OK) {
					voxctl_err("demo: publish %s: %s",
						   vox_event_kind_name(s->ev.kind),
						   vox_status_str(st));
					return voxctl_exit_for(st);
				}
				d->published++;
				if (ack.duplicate)
					d->duplicates++;
			}
		} else {
			jsPubOptions po;
			jsPubAck *pa = NULL;
			jsErrCode jerr = 0;
			jsPubOptions_Init(&po);
			po.MsgId = s->msgid;
			po.MaxWait = 5000;
			natsStatus ns = js_Publish(&pa, d->js, s->subject, s->raw.data,
						   (int)s->raw.len, &po, &jerr);
			jsPubAck_Destroy(pa);
			if (ns != NATS_OK) {
				voxctl_err("demo: publish %s: %s", s->subject,
					   natsStatus_GetText(ns));
				return EXIT_UNREACHABLE;
			}
			d->published++;
			d->malformed++;
		}
		if (i + 1 == d->nsteps || (i & 7) == 0)
			progress(d, i + 1, d->nsteps);
	}
	return EXIT_OK;
}

/* ---- waiting for the actors ---------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Done when every consumer exists with nothing pending and the outbox is
 * published. why gets what is still missing. */
static bool processed(demo *d, char *why, size_t whylen)
{
	size_t w = 0;
	why[0] = '\0';
	for (size_t i = 0; i < VOX_NELEM(durables); i++) {
		jsConsumerInfo *ci = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetConsumerInfo(&ci, d->js, VOX_STREAM_EVENTS,
						  durables[i], NULL, &jerr);
		if (s != NATS_OK) {
			w += (size_t)snprintf(why + w, w < whylen ? whylen - w : 0,
					      "%sconsumer %s does not exist",
					      w ? "; " : "", durables[i]);
		} else if (ci->NumPending + (uint64_t)ci->NumAckPending > 0) {
			w += (size_t)snprintf(why + w, w < whylen ? whylen - w : 0,
					      "%s%" PRIu64 " pending on %s",
					      w ? "; " : "",
					      ci->NumPending + (uint64_t)ci->NumAckPending,
					      durables[i]);
		}
		jsConsumerInfo_Destroy(ci);
		if (w >= whylen)
			w = whylen - 1;
	}
	if (w)
		return false;
	PGresult *r = PQexec(d->db, "SELECT count(*) FROM vox_outbox"
				    " WHERE published_at IS NULL");
	long long unpublished = 1;
	if (vox_pg_status(d->db, r) == VOX_OK)
		unpublished = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (unpublished > 0) {
		snprintf(why, whylen, "%lld alerts not yet published", unpublished);
		return false;
	}
	return true;
}

static int wait_processed(demo *d)
{
	char why[512];
	int64_t deadline = now_ms() + (int64_t)d->wait_s * 1000;
	if (d->progress_lines || d->progress_bar)
		fprintf(stderr, "demo: waiting up to %d s for the actors\n", d->wait_s);
	for (int i = 0; i < 100000; i++) {
		if (processed(d, why, sizeof(why)))
			return EXIT_OK;
		if (now_ms() >= deadline)
			break;
		sleep_ms(200);
	}
	voxctl_err("demo: the actors did not process the events within %d s (%s):"
		   " are vox-calls, vox-billing and vox-leads running? (make run)",
		   d->wait_s, why);
	return EXIT_SERVER;
}

/* ---- the summary ----------------------------------------------------------- */

static int org_of_subject(demo *d, const char *subject)
{
	const char *dot = strrchr(subject, '.');
	if (!dot)
		return -1;
	for (int o = 0; o < d->norgs; o++)
		if (strcmp(dot + 1, d->orgs[o].id) == 0)
			return o;
	return -1;
}

static void count_alerts(demo *d)
{
	natsMsg *m = NULL;
	for (int i = 0; i < 100000; i++) {
		if (natsSubscription_NextMsg(&m, d->alerts, 500) != NATS_OK)
			break;
		const char *subj = natsMsg_GetSubject(m);
		int o = org_of_subject(d, subj);
		if (o >= 0) {
			if (strncmp(subj, "alert.hot_lead.", 15) == 0)
				d->orgs[o].alerts_hot++;
			else if (strncmp(subj, "alert.low_balance.", 18) == 0)
				d->orgs[o].alerts_low++;
			else if (strncmp(subj, "alert.debt_limit.", 17) == 0)
				d->orgs[o].alerts_debt++;
		}
		natsMsg_Destroy(m);
		m = NULL;
	}
}

static uint64_t dlq_last_seq(demo *d)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	uint64_t last = 0;
	if (js_GetStreamInfo(&si, d->js, VOX_STREAM_DLQ, NULL, &jerr) == NATS_OK)
		last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return last;
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	vox_mp_pack_cstr(pk, k);
	if (v)
		vox_mp_pack_cstr(pk, v);
	else
		msgpack_pack_nil(pk);
}

static void pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
	vox_mp_pack_cstr(pk, k);
	msgpack_pack_int64(pk, v);
}

static const char *hdr(natsMsg *m, const char *name)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, name, &v) != NATS_OK)
		return NULL;
	return v;
}

/* The dead letters of this run, as an array; counts per org. */
static void pack_dead_letters(demo *d, msgpack_packer *pk)
{
	uint64_t last = dlq_last_seq(d);
	natsMsg *msgs[MAX_DEAD];
	int org_of[MAX_DEAD];
	int n = 0;
	for (uint64_t seq = d->dlq_start + 1; seq <= last && n < MAX_DEAD; seq++) {
		natsMsg *m = NULL;
		jsErrCode jerr = 0;
		if (js_GetMsg(&m, d->js, VOX_STREAM_DLQ, seq, NULL, &jerr) != NATS_OK)
			continue;
		int o = org_of_subject(d, natsMsg_GetSubject(m));
		if (o < 0) {
			natsMsg_Destroy(m);
			continue;
		}
		d->orgs[o].dead++;
		org_of[n] = o;
		msgs[n++] = m;
	}
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		natsMsg *m = msgs[i];
		const char *subj = natsMsg_GetSubject(m);
		const char *seq = hdr(m, VOX_HDR_STREAM_SEQ);
		msgpack_pack_map(pk, 7);
		pack_kv_str(pk, "subject", subj + strlen(VOX_DLQ_PREFIX));
		pack_kv_str(pk, "org_id", d->orgs[org_of[i]].id);
		pack_kv_str(pk, "actor", hdr(m, VOX_HDR_ACTOR));
		pack_kv_str(pk, "reason", hdr(m, "Vox-Error-Reason"));
		pack_kv_str(pk, "error", hdr(m, VOX_HDR_ERROR));
		pack_kv_str(pk, "error_code", hdr(m, VOX_HDR_ERROR_CODE));
		pack_kv_int(pk, "stream_seq", seq ? strtoll(seq, NULL, 10) : 0);
		natsMsg_Destroy(m);
	}
}

#define ORG_FIGURES                                                             \
	"SELECT o.wallet_balance_pence, o.unbilled_pence, o.debt_limit_pence,"  \
	" (SELECT coalesce(sum(amount_pence), 0) FROM credit_transactions"      \
	"   WHERE org_id = o.id),"                                              \
	" (SELECT coalesce(sum(charge_pence), 0) FROM call_charges"             \
	"   WHERE org_id = o.id),"                                              \
	" (SELECT count(*) FROM call_charges WHERE org_id = o.id),"             \
	" (SELECT coalesce(sum(amount_pence), 0) FROM credit_transactions"      \
	"   WHERE org_id = o.id AND type = 'topup'"                             \
	"   AND stripe_payment_intent_id IS NOT NULL),"                         \
	" (SELECT coalesce(-sum(amount_pence), 0) FROM credit_transactions"     \
	"   WHERE org_id = o.id AND type = 'refund'),"                          \
	" (SELECT count(*) FROM calls WHERE org_id = o.id),"                    \
	" (SELECT count(*) FROM calls WHERE org_id = o.id AND status = 'failed'),"\
	" (SELECT count(*) FROM contacts WHERE org_id = o.id"                   \
	"   AND lead_status = 'hot')"                                           \
	" FROM organizations o WHERE o.id = $1::uuid"

static const char *const figure_names[] = {
	"balance_pence", "unbilled_pence", "debt_limit_pence", "ledger_sum_pence",
	"charges_pence", "calls_charged", "topups_pence", "refunds_pence",
	"calls", "calls_failed", "hot_contacts",
};

static int summary(demo *d)
{
	msgpack_sbuffer sb, dl;
	msgpack_packer pk, dk;
	int code = EXIT_OK;
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_init(&dl);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_packer_init(&dk, &dl, msgpack_sbuffer_write);

	count_alerts(d);
	pack_dead_letters(d, &dk); /* fills the per-org counts first */

	msgpack_pack_map(&pk, 9);
	pack_kv_int(&pk, "seed", (int64_t)d->seed);
	pack_kv_str(&pk, "run", d->run);
	pack_kv_int(&pk, "published", d->published);
	pack_kv_int(&pk, "duplicates_ignored", d->duplicates);
	pack_kv_int(&pk, "malformed", d->malformed);
	int dead = 0;
	for (int o = 0; o < d->norgs; o++)
		dead += d->orgs[o].dead;
	pack_kv_int(&pk, "dead_letters", dead);
	vox_mp_pack_cstr(&pk, "orgs");
	msgpack_pack_array(&pk, (size_t)d->norgs);
	for (int o = 0; o < d->norgs && code == EXIT_OK; o++) {
		org_state *os = &d->orgs[o];
		const char *p[1] = {os->id};
		PGresult *r = PQexecParams(d->db, ORG_FIGURES, 1, NULL, p, NULL, NULL, 0);
		if (vox_pg_status(d->db, r) != VOX_OK || PQntuples(r) != 1) {
			voxctl_err("demo: reading %s: %s", os->id,
				   PQresultErrorMessage(r));
			code = voxctl_exit_for(vox_pg_status(d->db, r)) == EXIT_UNREACHABLE
				       ? EXIT_UNREACHABLE
				       : EXIT_SERVER;
			PQclear(r);
			break;
		}
		msgpack_pack_map(&pk, 5 + VOX_NELEM(figure_names) + 1);
		pack_kv_str(&pk, "id", os->id);
		pack_kv_str(&pk, "name", os->name);
		pack_kv_int(&pk, "opening_balance_pence", os->opening);
		for (size_t f = 0; f < VOX_NELEM(figure_names); f++)
			pack_kv_int(&pk, figure_names[f],
				    strtoll(PQgetvalue(r, 0, (int)f), NULL, 10));
		PQclear(r);
		vox_mp_pack_cstr(&pk, "alerts");
		msgpack_pack_map(&pk, 3);
		pack_kv_int(&pk, "hot_lead", os->alerts_hot);
		pack_kv_int(&pk, "low_balance", os->alerts_low);
		pack_kv_int(&pk, "debt_limit", os->alerts_debt);
		pack_kv_int(&pk, "dead_letters", os->dead);
		pack_kv_str(&pk, "email", os->email);
	}
	vox_mp_pack_cstr(&pk, "dead_letter_reasons");
	msgpack_sbuffer_write(&sb, dl.data, dl.size);
	pack_kv_int(&pk, "orgs_count", d->norgs);
	if (code == EXIT_OK && !voxctl_print_mp(sb.data, sb.size))
		code = EXIT_SERVER;
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&dl);
	return code;
}

/* ---- the command ------------------------------------------------------------- */

static int create_orgs(demo *d)
{
	for (int o = 0; o < d->norgs; o++) {
		org_state *os = &d->orgs[o];
		const char *base = clinics[o % VOX_NELEM(clinics)];
		if (o < (int)VOX_NELEM(clinics))
			snprintf(os->name, sizeof(os->name), "%s", base);
		else
			snprintf(os->name, sizeof(os->name), "%s %d", base,
				 o / (int)VOX_NELEM(clinics) + 1);
		snprintf(os->email, sizeof(os->email), "reception+%s-%d@demo.vox.invalid",
			 d->run, o + 1);
		/* the second clinic runs low during the day */
		os->opening = o == 1 ? rnd(12, 20) * 100 : rnd(40, 120) * 100;
		voxctl_org org = {
			.name = os->name,
			.email = os->email,
			.plan = o % 3 == 0 ? "professional" : "starter",
			.balance = os->opening,
			.debt_limit = 500,
			.low_balance = 1000,
		};
		int code = voxctl_org_insert(d->db, &org, os->id);
		if (code != EXIT_OK)
			return code;
		if (d->progress_lines)
			fprintf(stderr, "demo: created %s (%s) with %" PRId64 " pence\n",
				os->name, os->id, os->opening);
	}
	return EXIT_OK;
}

int voxctl_cmd_demo(int argc, char **argv)
{
	demo *d = vox_calloc(1, sizeof(*d));
	long long v;
	bool seeded = false, no_progress = false;
	int code = EXIT_USAGE;

	d->norgs = 3;
	d->ncalls = 12;
	d->wait_s = 30;
	static const struct option opts[] = {
		{"orgs", required_argument, NULL, 'o'},
		{"calls", required_argument, NULL, 'c'},
		{"seed", required_argument, NULL, 's'},
		{"wait-seconds", required_argument, NULL, 'w'},
		{"no-progress", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	int o;
	voxctl_getopt_reset();
	while ((o = voxctl_getopt("demo", argc, argv, "", opts)) != -1) {
		switch (o) {
		case 'o':
			if (!voxctl_int_opt(&v, "demo", "--orgs", optarg, 1, MAX_ORGS))
				goto out;
			d->norgs = (int)v;
			break;
		case 'c':
			if (!voxctl_int_opt(&v, "demo", "--calls", optarg, 1, MAX_CALLS))
				goto out;
			d->ncalls = (int)v;
			break;
		case 's':
			if (!voxctl_int_opt(&v, "demo", "--seed", optarg, 0, INT64_MAX))
				goto out;
			d->seed = (uint64_t)v;
			seeded = true;
			break;
		case 'w':
			if (!voxctl_int_opt(&v, "demo", "--wait-seconds", optarg, 1, 3600))
				goto out;
			d->wait_s = (int)v;
			break;
		case 'n':
			no_progress = true;
			break;
		default:
			goto out;
		}
	}
	if (optind < argc) {
		voxctl_usage_err("demo", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (sodium_init() < 0) {
		voxctl_err("demo: libsodium failed to initialise");
		code = EXIT_SERVER;
		goto out;
	}
	if (!seeded)
		d->seed = (uint64_t)time(NULL);
	rng_state = d->seed;
	snprintf(d->run, sizeof(d->run), "%08" PRIx32, randombytes_random());
	bool tty = isatty(STDERR_FILENO) == 1;
	d->progress_bar = tty && !no_progress;
	d->progress_lines = !tty && !no_progress;

	code = voxctl_jetstream(&d->nc, &d->js);
	if (code != EXIT_OK)
		goto out;
	code = voxctl_pg_connect(&d->db);
	if (code != EXIT_OK)
		goto out;
	/* the streams are the operator's (make run applies them): the demo
	 * checks them and changes nothing, so it cannot alter the settings
	 * of a deployment it is pointed at */
	static const char *const needed[] = {VOX_STREAM_EVENTS, VOX_STREAM_ALERTS,
					     VOX_STREAM_DLQ};
	for (size_t i = 0; i < VOX_NELEM(needed); i++) {
		jsStreamInfo *si = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetStreamInfo(&si, d->js, needed[i], NULL, &jerr);
		jsStreamInfo_Destroy(si);
		if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
			voxctl_err("demo: no %s stream on the server: create the"
				   " streams with `voxctl streams apply` (make run"
				   " does)", needed[i]);
			code = EXIT_SERVER;
			goto out;
		}
		if (s != NATS_OK) {
			voxctl_err("demo: JetStream: %s", natsStatus_GetText(s));
			code = EXIT_UNREACHABLE;
			goto out;
		}
	}
	code = create_orgs(d);
	if (code != EXIT_OK)
		goto out;
	plan_day(d);
	if (natsConnection_SubscribeSync(&d->alerts, d->nc, "alert.>") != NATS_OK ||
	    natsSubscription_SetPendingLimits(d->alerts, -1, -1) != NATS_OK ||
	    natsConnection_Flush(d->nc) != NATS_OK) {
		voxctl_err("demo: cannot subscribe to alert.>");
		code = EXIT_UNREACHABLE;
		goto out;
	}
	d->dlq_start = dlq_last_seq(d);
	if (d->progress_lines)
		fprintf(stderr, "demo: publishing %zu messages for %d clinics (seed %" PRIu64 ")\n",
			d->nsteps, d->norgs, d->seed);
	code = publish_all(d);
	if (code != EXIT_OK)
		goto out;
	if (d->progress_lines)
		fprintf(stderr, "demo: published %d messages (%d repeats, %d malformed)\n",
			d->published, d->duplicates, d->malformed);
	code = wait_processed(d);
	if (code != EXIT_OK)
		goto out;
	code = summary(d);
out:
	for (size_t i = 0; i < d->nsteps; i++)
		vox_buf_release(&d->steps[i].raw);
	free(d->steps);
	if (d->alerts) {
		natsSubscription_Unsubscribe(d->alerts);
		natsSubscription_Destroy(d->alerts);
	}
	PQfinish(d->db);
	jsCtx_Destroy(d->js);
	natsConnection_Destroy(d->nc);
	free(d);
	return code;
}
