/*
 * dispose.c - the consume loop's decision tables (see dispose.h). Each
 * decision is a table of rows, read top to bottom, the first matching row
 * deciding; the unit tests (tests/unit/test_dispose.c) cover every row.
 */
#include "core/dispose.h"

/* ---- classes of failure -------------------------------------------------- */

vox_fault vox_fault_of(vox_status st, const char *sqlstate)
{
	if (sqlstate && sqlstate[0]) {
		if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
			return VOX_FAULT_RETRY;
		/* 22: data exception, 23: integrity constraint violation; a
		 * handler that recognised a race (a unique key another
		 * instance committed meanwhile) asks for a re-run instead */
		if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0)
			return st == VOX_E_RETRY ? VOX_FAULT_RETRY : VOX_FAULT_DATA;
		/* 25006 read-only, 57014 timeout, 55P03 lock, 42501 permission,
		 * 42P01/42703 migration, 53 resources, 58 I/O, 08 connection,
		 * 57P shutdown, XX internal, anything unknown */
		return VOX_FAULT_WORLD;
	}
	switch (st) {
	case VOX_OK:
		return VOX_FAULT_NONE;
	case VOX_E_RETRY:
		return VOX_FAULT_RETRY;
	case VOX_E_DECODE:
	case VOX_E_INVALID:
	case VOX_E_ORG_MISMATCH:
	case VOX_E_UNKNOWN_ORG:
	case VOX_E_CONFLICT:
	case VOX_E_TOO_LARGE:
	case VOX_E_NOT_FOUND:
		return VOX_FAULT_DATA;
	default:
		return VOX_FAULT_WORLD;
	}
}

const char *vox_fault_str(vox_fault f)
{
	switch (f) {
	case VOX_FAULT_NONE: return "none";
	case VOX_FAULT_RETRY: return "retry";
	case VOX_FAULT_DATA: return "data";
	case VOX_FAULT_WORLD: return "world";
	}
	return "unknown";
}

/* ---- a batch's transaction ------------------------------------------------ */

typedef enum batch_cond {
	B_ANY,
	B_RERUNS_LEFT, /* reruns < VOX_MAX_RERUNS */
	B_MAY_ISOLATE, /* the breaker allows a round */
} batch_cond;

static const struct batch_rule {
	vox_fault fault;
	batch_cond when;
	vox_step step;
} batch_rules[] = {
	{VOX_FAULT_NONE, B_ANY, VOX_STEP_SETTLE},
	{VOX_FAULT_RETRY, B_RERUNS_LEFT, VOX_STEP_RERUN},
	{VOX_FAULT_RETRY, B_ANY, VOX_STEP_WAIT},
	{VOX_FAULT_DATA, B_MAY_ISOLATE, VOX_STEP_ISOLATE},
	{VOX_FAULT_DATA, B_ANY, VOX_STEP_WAIT},
	{VOX_FAULT_WORLD, B_ANY, VOX_STEP_WAIT},
};

static bool batch_matches(const struct batch_rule *r, const vox_batch_outcome *o)
{
	if (r->fault != o->fault)
		return false;
	switch (r->when) {
	case B_ANY: return true;
	case B_RERUNS_LEFT: return o->reruns < VOX_MAX_RERUNS;
	case B_MAY_ISOLATE: return o->may_isolate;
	}
	return false;
}

vox_step vox_dispose_batch(const vox_batch_outcome *o)
{
	for (size_t i = 0; i < VOX_NELEM(batch_rules); i++)
		if (batch_matches(&batch_rules[i], o))
			return batch_rules[i].step;
	return VOX_STEP_WAIT; /* an unknown class waits: never a dead letter */
}

/* ---- one message ------------------------------------------------------- */

typedef enum item_cond {
	I_ANY,
	I_DEFER_SPENT,   /* deferrals >= VOX_DEFER_DELIVERIES */
	I_DATA_EVIDENT,  /* a data fault, and evidence that it is its own */
	I_DATA,          /* a data fault without evidence */
	I_STOPPING,
} item_cond;

typedef enum item_delay {
	D_NONE,
	D_ZERO,       /* at once: another instance may take it */
	D_DELIVERED,  /* grows with JetStream's delivery count */
	D_DEFERRALS,  /* grows with the message's own deferrals */
} item_delay;

static const struct item_rule {
	vox_verdict verdict;
	item_cond when;
	vox_action action;
	item_delay delay;
	const char *name;
} item_rules[] = {
	{VOX_VERDICT_UNDECODABLE, I_ANY, VOX_ACT_DEAD_LETTER, D_NONE, "undecodable"},
	{VOX_VERDICT_APPLIED, I_ANY, VOX_ACT_ACK, D_NONE, "applied"},
	{VOX_VERDICT_REFUSED, I_ANY, VOX_ACT_DEAD_LETTER, D_NONE, "refused"},
	{VOX_VERDICT_DEFERRED, I_DEFER_SPENT, VOX_ACT_DEAD_LETTER, D_NONE, "deferrals spent"},
	{VOX_VERDICT_DEFERRED, I_ANY, VOX_ACT_NAK, D_DEFERRALS, "deferred"},
	{VOX_VERDICT_FAILED, I_DATA_EVIDENT, VOX_ACT_DEAD_LETTER, D_NONE, "data error of its own"},
	{VOX_VERDICT_FAILED, I_STOPPING, VOX_ACT_NAK, D_ZERO, "stopping"},
	{VOX_VERDICT_FAILED, I_DATA, VOX_ACT_NAK, D_DELIVERED, "data error without evidence"},
	{VOX_VERDICT_FAILED, I_ANY, VOX_ACT_NAK, D_DELIVERED, "fault of the world"},
	{VOX_VERDICT_NOT_RUN, I_STOPPING, VOX_ACT_NAK, D_ZERO, "stopping"},
	{VOX_VERDICT_NOT_RUN, I_ANY, VOX_ACT_NAK, D_DELIVERED, "waits"},
};

static bool item_matches(const struct item_rule *r, const vox_dispose_cfg *c,
			 const vox_item_outcome *o)
{
	if (r->verdict != o->verdict)
		return false;
	switch (r->when) {
	case I_ANY: return true;
	case I_DEFER_SPENT: return o->deferrals >= c->defer_limit;
	case I_DATA_EVIDENT: return o->fault == VOX_FAULT_DATA && o->evidence;
	case I_DATA: return o->fault == VOX_FAULT_DATA;
	case I_STOPPING: return o->stopping;
	}
	return false;
}

int64_t vox_retry_delay_ms(uint64_t n, int64_t max_ms)
{
	int64_t d = 250;
	for (uint64_t i = 1; i < n && d < max_ms; i++)
		d *= 2;
	return d > max_ms ? max_ms : d;
}

vox_disposition vox_dispose(const vox_dispose_cfg *c, const vox_item_outcome *o)
{
	vox_disposition d = {VOX_ACT_NAK, 0, "unknown"};
	for (size_t i = 0; i < VOX_NELEM(item_rules); i++) {
		const struct item_rule *r = &item_rules[i];
		if (!item_matches(r, c, o))
			continue;
		d.action = r->action;
		d.rule = r->name;
		switch (r->delay) {
		case D_NONE:
		case D_ZERO:
			d.delay_ms = 0;
			break;
		case D_DELIVERED:
			d.delay_ms = vox_retry_delay_ms(o->delivered, c->retry_max_ms);
			break;
		case D_DEFERRALS:
			d.delay_ms = vox_retry_delay_ms((uint64_t)o->deferrals,
							c->retry_max_ms);
			break;
		}
		return d;
	}
	/* no row: an unknown verdict waits, it is never dead-lettered */
	d.delay_ms = vox_retry_delay_ms(o->delivered, c->retry_max_ms);
	return d;
}

int64_t vox_backoff_next(int64_t prev_ms, int64_t max_ms)
{
	int64_t d = prev_ms > 0 ? prev_ms * 2 : 100;
	return d > max_ms ? max_ms : d;
}

bool vox_progress_due(int64_t now_ms, int64_t last_ms, int64_t ack_wait_ms)
{
	return now_ms - last_ms >= ack_wait_ms / 3;
}

#define REPLAN_FIRST 512u
#define REPLAN_EVERY (1u << 24)

bool vox_replan_due(uint64_t before, uint64_t after)
{
	if (after <= before || after < REPLAN_FIRST)
		return false;
	if (after > REPLAN_EVERY)
		return before / REPLAN_EVERY != after / REPLAN_EVERY;
	/* a power of two in (before, after]: after's highest bit is above
	 * before's, or after is the power itself */
	uint64_t p = REPLAN_FIRST;
	while (p * 2 <= after)
		p *= 2;
	return p > before;
}

/* ---- suspects ----------------------------------------------------------- */

static const size_t no_slot = (size_t)-1;

static size_t suspect_slot(const vox_suspects *s, uint64_t seq)
{
	for (size_t i = 0; i < VOX_SUSPECTS; i++)
		if (seq != 0 && s->slot[i].seq == seq)
			return i;
	return no_slot;
}

bool vox_suspects_evidence(const vox_suspects *s, uint64_t seq,
			   uint64_t round_commits, uint64_t commits)
{
	if (round_commits > 0)
		return true;
	size_t i = suspect_slot(s, seq);
	return i != no_slot && commits > s->slot[i].commits;
}

void vox_suspects_note(vox_suspects *s, uint64_t seq, uint64_t commits)
{
	size_t i = suspect_slot(s, seq);
	if (i != no_slot)
		return; /* keep the first failure's mark: evidence since then */
	s->slot[s->next].seq = seq;
	s->slot[s->next].commits = commits;
	s->next = (s->next + 1) % VOX_SUSPECTS;
}

void vox_suspects_forget(vox_suspects *s, uint64_t seq)
{
	size_t i = suspect_slot(s, seq);
	if (i != no_slot)
		s->slot[i].seq = 0;
}

/* ---- the breaker ---------------------------------------------------------- */

bool vox_breaker_may_isolate(const vox_breaker *b, int64_t now_ms)
{
	return b->empty_rounds == 0 || now_ms >= b->probe_at_ms;
}

void vox_breaker_round(vox_breaker *b, bool committed, int64_t now_ms,
		       int64_t max_ms)
{
	if (committed) {
		vox_breaker_commit(b);
		return;
	}
	b->empty_rounds++;
	b->delay_ms = vox_backoff_next(b->delay_ms, max_ms);
	b->probe_at_ms = now_ms + b->delay_ms;
}

void vox_breaker_commit(vox_breaker *b)
{
	b->empty_rounds = 0;
	b->probe_at_ms = 0;
	b->delay_ms = 0;
}

/* ---- logging once ------------------------------------------------------- */

bool vox_fault_log_failure(vox_fault_log *l, const char *sqlstate)
{
	const char *s = sqlstate ? sqlstate : "";
	if (!l->active)
		l->nseen = 0;
	l->active = true;
	snprintf(l->sqlstate, sizeof(l->sqlstate), "%s", s);
	for (size_t i = 0; i < l->nseen; i++)
		if (strcmp(l->seen[i], s) == 0)
			return false;
	if (l->nseen == VOX_FAULT_LOG_STATES)
		return false; /* enough said about this outage */
	snprintf(l->seen[l->nseen++], sizeof(l->seen[0]), "%s", s);
	return true;
}

bool vox_fault_log_commit(vox_fault_log *l)
{
	if (!l->active)
		return false;
	l->active = false;
	l->sqlstate[0] = '\0';
	l->nseen = 0;
	return true;
}
