/*
 * Unit tests of the consume loop's decision tables (src/core/dispose.c):
 * the class of every SQLSTATE the loop must tell apart, every row of the
 * batch and message tables, the delays, the evidence a data error needs
 * before a dead letter, the breaker, logging once, and the isolation and
 * shutdown paths played through the same functions the runtime calls.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/dispose.h"

static const vox_dispose_cfg cfg = {.retry_max_ms = 30000, .defer_limit = 10};

/* ---- classes ------------------------------------------------------------ */

static void test_sqlstates_that_retry_at_once(void **state)
{
	(void)state;
	assert_int_equal(vox_fault_of(VOX_E_RETRY, "40001"), VOX_FAULT_RETRY);
	assert_int_equal(vox_fault_of(VOX_E_RETRY, "40P01"), VOX_FAULT_RETRY);
	/* the SQLSTATE decides, whatever status the handler returned */
	assert_int_equal(vox_fault_of(VOX_E_INTERNAL, "40001"), VOX_FAULT_RETRY);
}

static void test_data_errors_are_classes_22_and_23(void **state)
{
	(void)state;
	static const char *data[] = {"22003", "22P02", "22001", "22021",
				     "23505", "23514", "23503", "23502"};
	for (size_t i = 0; i < VOX_NELEM(data); i++)
		assert_int_equal(vox_fault_of(VOX_E_INTERNAL, data[i]), VOX_FAULT_DATA);
	/* a race the handler recognised (another instance's key) re-runs */
	assert_int_equal(vox_fault_of(VOX_E_RETRY, "23505"), VOX_FAULT_RETRY);
	/* but a handler cannot turn a fault of the world into a re-run loop */
	assert_int_equal(vox_fault_of(VOX_E_RETRY, "25006"), VOX_FAULT_WORLD);
}

static void test_faults_of_the_world_wait(void **state)
{
	(void)state;
	/* read-only standby, statement timeout, lock timeout, missing GRANT,
	 * table, column; insufficient resources, disk full, I/O; connection
	 * lost, admin shutdown, cannot connect now; internal, plpgsql raise,
	 * feature not supported, something never seen before; and a column
	 * type or function a migration changed under the statement (42804
	 * datatype mismatch, 42883 undefined function): the schema's fault,
	 * not the message's */
	static const char *world[] = {"25006", "57014", "55P03", "42501", "42P01",
				      "42703", "42804", "42883", "53100", "53200",
				      "53300", "58030",
				      "08006", "08003", "57P01", "57P03", "XX000",
				      "P0001", "0A000", "ZZ999"};
	for (size_t i = 0; i < VOX_NELEM(world); i++) {
		assert_int_equal(vox_fault_of(VOX_E_INTERNAL, world[i]), VOX_FAULT_WORLD);
		/* even when the handler called it a conflict */
		assert_int_equal(vox_fault_of(VOX_E_CONFLICT, world[i]), VOX_FAULT_WORLD);
	}
}

static void test_statuses_without_a_sqlstate(void **state)
{
	(void)state;
	assert_int_equal(vox_fault_of(VOX_OK, NULL), VOX_FAULT_NONE);
	assert_int_equal(vox_fault_of(VOX_OK, ""), VOX_FAULT_NONE);
	assert_int_equal(vox_fault_of(VOX_E_RETRY, ""), VOX_FAULT_RETRY);
	static const vox_status data[] = {VOX_E_DECODE, VOX_E_INVALID,
		VOX_E_ORG_MISMATCH, VOX_E_UNKNOWN_ORG, VOX_E_CONFLICT,
		VOX_E_TOO_LARGE, VOX_E_NOT_FOUND};
	for (size_t i = 0; i < VOX_NELEM(data); i++)
		assert_int_equal(vox_fault_of(data[i], NULL), VOX_FAULT_DATA);
	static const vox_status world[] = {VOX_E_UNAVAILABLE, VOX_E_TIMEOUT,
		VOX_E_INTERNAL, VOX_E_CONFIG, VOX_E_CRYPTO, VOX_E_FORBIDDEN,
		VOX_E_USAGE, (vox_status)999};
	for (size_t i = 0; i < VOX_NELEM(world); i++)
		assert_int_equal(vox_fault_of(world[i], NULL), VOX_FAULT_WORLD);
	assert_string_equal(vox_fault_str(VOX_FAULT_WORLD), "world");
	assert_string_equal(vox_fault_str(VOX_FAULT_DATA), "data");
}

/* ---- the batch table ------------------------------------------------------ */

static vox_step step_of(vox_fault f, int reruns, bool may_isolate)
{
	vox_batch_outcome o = {f, reruns, may_isolate};
	return vox_dispose_batch(&o);
}

static void test_batch_rows(void **state)
{
	(void)state;
	assert_int_equal(step_of(VOX_FAULT_NONE, 0, true), VOX_STEP_SETTLE);
	assert_int_equal(step_of(VOX_FAULT_NONE, 2, false), VOX_STEP_SETTLE);
	for (int r = 0; r < VOX_MAX_RERUNS; r++)
		assert_int_equal(step_of(VOX_FAULT_RETRY, r, true), VOX_STEP_RERUN);
	assert_int_equal(step_of(VOX_FAULT_RETRY, VOX_MAX_RERUNS, true), VOX_STEP_WAIT);
	assert_int_equal(step_of(VOX_FAULT_DATA, 0, true), VOX_STEP_ISOLATE);
	assert_int_equal(step_of(VOX_FAULT_DATA, 0, false), VOX_STEP_WAIT);
	assert_int_equal(step_of(VOX_FAULT_WORLD, 0, true), VOX_STEP_WAIT);
	assert_int_equal(step_of(VOX_FAULT_WORLD, 0, false), VOX_STEP_WAIT);
	/* an unknown class never isolates (which could dead-letter) */
	assert_int_equal(step_of((vox_fault)77, 0, true), VOX_STEP_WAIT);
}

/* ---- the message table ------------------------------------------------------ */

static vox_disposition dispose(vox_verdict v, vox_fault f, uint64_t delivered,
			       int64_t deferrals, bool evidence, bool stopping)
{
	vox_item_outcome o = {v, f, delivered, deferrals, evidence, stopping};
	return vox_dispose(&cfg, &o);
}

static void test_undecodable_and_refused_are_dead_letters(void **state)
{
	(void)state;
	vox_disposition d = dispose(VOX_VERDICT_UNDECODABLE, VOX_FAULT_NONE, 1, 0, false, false);
	assert_int_equal(d.action, VOX_ACT_DEAD_LETTER);
	assert_string_equal(d.rule, "undecodable");
	d = dispose(VOX_VERDICT_REFUSED, VOX_FAULT_NONE, 3, 0, false, true);
	assert_int_equal(d.action, VOX_ACT_DEAD_LETTER);
	assert_string_equal(d.rule, "refused");
}

static void test_applied_is_acked(void **state)
{
	(void)state;
	vox_disposition d = dispose(VOX_VERDICT_APPLIED, VOX_FAULT_NONE, 7, 0, false, true);
	assert_int_equal(d.action, VOX_ACT_ACK);
	assert_string_equal(d.rule, "applied");
}

static void test_deferral_counts_deferrals_not_deliveries(void **state)
{
	(void)state;
	/* delivered 25 times (an outage) but deferred once: it waits */
	vox_disposition d = dispose(VOX_VERDICT_DEFERRED, VOX_FAULT_NONE, 25, 1, false, false);
	assert_int_equal(d.action, VOX_ACT_NAK);
	assert_string_equal(d.rule, "deferred");
	assert_int_equal(d.delay_ms, 250); /* the delay grows with deferrals */
	d = dispose(VOX_VERDICT_DEFERRED, VOX_FAULT_NONE, 25, 3, false, false);
	assert_int_equal(d.delay_ms, 1000);
	d = dispose(VOX_VERDICT_DEFERRED, VOX_FAULT_NONE, 1, 9, false, false);
	assert_int_equal(d.action, VOX_ACT_NAK);
	d = dispose(VOX_VERDICT_DEFERRED, VOX_FAULT_NONE, 10, 10, false, false);
	assert_int_equal(d.action, VOX_ACT_DEAD_LETTER);
	assert_string_equal(d.rule, "deferrals spent");
	/* shutting down does not change a deferral */
	d = dispose(VOX_VERDICT_DEFERRED, VOX_FAULT_NONE, 1, 2, false, true);
	assert_int_equal(d.action, VOX_ACT_NAK);
	assert_int_equal(d.delay_ms, 500);
}

static void test_data_error_needs_evidence(void **state)
{
	(void)state;
	vox_disposition d = dispose(VOX_VERDICT_FAILED, VOX_FAULT_DATA, 2, 0, true, false);
	assert_int_equal(d.action, VOX_ACT_DEAD_LETTER);
	assert_string_equal(d.rule, "data error of its own");
	d = dispose(VOX_VERDICT_FAILED, VOX_FAULT_DATA, 2, 0, false, false);
	assert_int_equal(d.action, VOX_ACT_NAK);
	assert_string_equal(d.rule, "data error without evidence");
	assert_int_equal(d.delay_ms, 500);
	/* evidence decides even while stopping: the dead letter is definite */
	d = dispose(VOX_VERDICT_FAILED, VOX_FAULT_DATA, 2, 0, true, true);
	assert_int_equal(d.action, VOX_ACT_DEAD_LETTER);
	d = dispose(VOX_VERDICT_FAILED, VOX_FAULT_DATA, 2, 0, false, true);
	assert_int_equal(d.action, VOX_ACT_NAK);
	assert_int_equal(d.delay_ms, 0);
}

static void test_faults_of_the_world_are_never_dead_letters(void **state)
{
	(void)state;
	static const vox_fault faults[] = {VOX_FAULT_WORLD, VOX_FAULT_RETRY,
					   VOX_FAULT_NONE};
	for (size_t i = 0; i < VOX_NELEM(faults); i++) {
		for (uint64_t delivered = 1; delivered < 1000; delivered *= 3) {
			/* whatever the evidence or the delivery count */
			for (int ev = 0; ev < 2; ev++) {
				vox_disposition d = dispose(VOX_VERDICT_FAILED, faults[i],
							    delivered, 0, ev, false);
				assert_int_equal(d.action, VOX_ACT_NAK);
				assert_string_equal(d.rule, "fault of the world");
				assert_int_equal(d.delay_ms,
						 vox_retry_delay_ms(delivered, cfg.retry_max_ms));
			}
		}
	}
	vox_disposition d = dispose(VOX_VERDICT_NOT_RUN, VOX_FAULT_NONE, 4, 0, false, false);
	assert_int_equal(d.action, VOX_ACT_NAK);
	assert_string_equal(d.rule, "waits");
	assert_int_equal(d.delay_ms, 2000);
}

static void test_shutdown_naks_at_once(void **state)
{
	(void)state;
	vox_disposition d = dispose(VOX_VERDICT_NOT_RUN, VOX_FAULT_NONE, 9, 0, false, true);
	assert_int_equal(d.action, VOX_ACT_NAK);
	assert_string_equal(d.rule, "stopping");
	assert_int_equal(d.delay_ms, 0);
	d = dispose(VOX_VERDICT_FAILED, VOX_FAULT_WORLD, 9, 0, false, true);
	assert_int_equal(d.action, VOX_ACT_NAK);
	assert_string_equal(d.rule, "stopping");
	assert_int_equal(d.delay_ms, 0);
	/* an applied message is still acked while stopping */
	d = dispose(VOX_VERDICT_APPLIED, VOX_FAULT_NONE, 1, 0, false, true);
	assert_int_equal(d.action, VOX_ACT_ACK);
}

static void test_unknown_verdict_waits(void **state)
{
	(void)state;
	vox_disposition d = dispose((vox_verdict)42, VOX_FAULT_DATA, 1, 0, true, false);
	assert_int_equal(d.action, VOX_ACT_NAK);
	assert_int_equal(d.delay_ms, 250);
}

/* ---- delays ------------------------------------------------------------- */

static void test_delays(void **state)
{
	(void)state;
	assert_int_equal(vox_retry_delay_ms(0, 30000), 250);
	assert_int_equal(vox_retry_delay_ms(1, 30000), 250);
	assert_int_equal(vox_retry_delay_ms(2, 30000), 500);
	assert_int_equal(vox_retry_delay_ms(8, 30000), 30000);
	assert_int_equal(vox_retry_delay_ms(1000000, 30000), 30000);
	assert_int_equal(vox_retry_delay_ms(5, 300), 300);
	assert_int_equal(vox_backoff_next(0, 30000), 100);
	assert_int_equal(vox_backoff_next(100, 30000), 200);
	assert_int_equal(vox_backoff_next(20000, 30000), 30000);
	assert_int_equal(vox_backoff_next(0, 50), 50);
	assert_false(vox_progress_due(1000, 1000, 30000));
	assert_false(vox_progress_due(10999, 1000, 30000));
	assert_true(vox_progress_due(11000, 1000, 30000));
	assert_true(vox_progress_due(2000, 1000, 3000));
}

/* ---- evidence ----------------------------------------------------------- */

static void test_evidence_from_the_round_or_later_commits(void **state)
{
	(void)state;
	vox_suspects s;
	memset(&s, 0, sizeof(s));
	/* another message of the same round committed */
	assert_true(vox_suspects_evidence(&s, 7, 1, 100));
	/* alone and never seen: no evidence */
	assert_false(vox_suspects_evidence(&s, 7, 0, 100));
	vox_suspects_note(&s, 7, 100);
	assert_false(vox_suspects_evidence(&s, 7, 0, 100));
	/* a commit since it last failed */
	assert_true(vox_suspects_evidence(&s, 7, 0, 101));
	/* a second failure keeps the first mark */
	vox_suspects_note(&s, 7, 150);
	assert_true(vox_suspects_evidence(&s, 7, 0, 101));
	vox_suspects_forget(&s, 7);
	assert_false(vox_suspects_evidence(&s, 7, 0, 1000));
	/* sequence 0 is never a suspect */
	vox_suspects_note(&s, 0, 1);
	assert_false(vox_suspects_evidence(&s, 0, 0, 1000));
}

static void test_suspects_memory_is_bounded(void **state)
{
	(void)state;
	vox_suspects s;
	memset(&s, 0, sizeof(s));
	for (uint64_t seq = 1; seq <= VOX_SUSPECTS; seq++)
		vox_suspects_note(&s, seq, 5);
	assert_true(vox_suspects_evidence(&s, 1, 0, 6));
	vox_suspects_note(&s, VOX_SUSPECTS + 1, 5); /* evicts the oldest */
	assert_false(vox_suspects_evidence(&s, 1, 0, 6));
	assert_true(vox_suspects_evidence(&s, 2, 0, 6));
	assert_true(vox_suspects_evidence(&s, VOX_SUSPECTS + 1, 0, 6));
}

/* ---- the breaker ---------------------------------------------------------- */

static void test_breaker(void **state)
{
	(void)state;
	vox_breaker b;
	memset(&b, 0, sizeof(b));
	assert_true(vox_breaker_may_isolate(&b, 0));
	vox_breaker_round(&b, true, 1000, 30000);
	assert_true(vox_breaker_may_isolate(&b, 1000));
	/* a round that committed nothing opens it */
	vox_breaker_round(&b, false, 1000, 30000);
	assert_false(vox_breaker_may_isolate(&b, 1000));
	assert_false(vox_breaker_may_isolate(&b, 1099));
	assert_true(vox_breaker_may_isolate(&b, 1100)); /* one probe round */
	vox_breaker_round(&b, false, 1100, 30000);
	assert_false(vox_breaker_may_isolate(&b, 1299));
	assert_true(vox_breaker_may_isolate(&b, 1300)); /* the delay doubled */
	for (int i = 0; i < 20; i++)
		vox_breaker_round(&b, false, 0, 30000);
	assert_int_equal(b.delay_ms, 30000);
	vox_breaker_commit(&b);
	assert_true(vox_breaker_may_isolate(&b, 0));
	assert_int_equal(b.empty_rounds, 0);
}

static void test_fault_logged_once_per_outage(void **state)
{
	(void)state;
	vox_fault_log l;
	memset(&l, 0, sizeof(l));
	assert_false(vox_fault_log_commit(&l));
	/* a failover: the connection drops, then the database is read-only */
	assert_true(vox_fault_log_failure(&l, NULL));
	assert_false(vox_fault_log_failure(&l, ""));
	assert_true(vox_fault_log_failure(&l, "25006"));
	assert_false(vox_fault_log_failure(&l, "25006"));
	assert_false(vox_fault_log_failure(&l, NULL)); /* seen in this outage */
	assert_string_equal(l.sqlstate, "");
	assert_false(vox_fault_log_failure(&l, "25006"));
	assert_string_equal(l.sqlstate, "25006");
	assert_true(vox_fault_log_commit(&l));
	assert_false(vox_fault_log_commit(&l));
	/* a new outage is logged again, even with a SQLSTATE seen before */
	assert_true(vox_fault_log_failure(&l, "25006"));
	/* bounded: a flapping outage cannot flood the log */
	char state_text[6];
	int logged = 0;
	for (int i = 0; i < 100; i++) {
		snprintf(state_text, sizeof(state_text), "XX%03d", i);
		logged += vox_fault_log_failure(&l, state_text);
	}
	assert_int_equal(logged, VOX_FAULT_LOG_STATES - 1);
}

/* ---- paths through the tables --------------------------------------------- */

/*
 * An isolation round as the runtime plays it: each item's own transaction
 * gives a step; data failures are held until the round ends; then each
 * held item gets its disposition with the round's evidence.
 */
typedef struct round_item {
	vox_fault fault; /* of its own transaction */
	uint64_t seq;
} round_item;

static void play_round(const round_item *items, size_t n, vox_suspects *s,
		       vox_breaker *b, uint64_t *commits, vox_action *out)
{
	size_t round_commits = 0;
	bool held[16] = {false};
	for (size_t i = 0; i < n; i++) {
		vox_batch_outcome o = {items[i].fault, 0, true};
		vox_step st = vox_dispose_batch(&o);
		if (st == VOX_STEP_SETTLE) {
			(*commits)++;
			round_commits++;
			vox_item_outcome io = {.verdict = VOX_VERDICT_APPLIED, .delivered = 1};
			out[i] = vox_dispose(&cfg, &io).action;
		} else {
			assert_int_equal(st, VOX_STEP_ISOLATE);
			held[i] = true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!held[i])
			continue;
		vox_item_outcome io = {
			.verdict = VOX_VERDICT_FAILED, .fault = VOX_FAULT_DATA,
			.delivered = 1,
			.evidence = vox_suspects_evidence(s, items[i].seq, round_commits,
							  *commits)};
		out[i] = vox_dispose(&cfg, &io).action;
		if (out[i] == VOX_ACT_NAK)
			vox_suspects_note(s, items[i].seq, *commits);
	}
	vox_breaker_round(b, round_commits > 0, 0, 30000);
}

static void test_isolation_dead_letters_only_the_poison(void **state)
{
	(void)state;
	vox_suspects s;
	vox_breaker b;
	uint64_t commits = 0;
	vox_action out[3];
	memset(&s, 0, sizeof(s));
	memset(&b, 0, sizeof(b));
	/* the batch failed with a data error: isolate */
	vox_batch_outcome o = {VOX_FAULT_DATA, 0, vox_breaker_may_isolate(&b, 0)};
	assert_int_equal(vox_dispose_batch(&o), VOX_STEP_ISOLATE);
	const round_item items[3] = {{VOX_FAULT_DATA, 1}, {VOX_FAULT_NONE, 2},
				     {VOX_FAULT_NONE, 3}};
	play_round(items, 3, &s, &b, &commits, out);
	/* the poison came first, yet the round's later commits are evidence */
	assert_int_equal(out[0], VOX_ACT_DEAD_LETTER);
	assert_int_equal(out[1], VOX_ACT_ACK);
	assert_int_equal(out[2], VOX_ACT_ACK);
	assert_true(vox_breaker_may_isolate(&b, 0));
}

static void test_a_batch_failing_the_same_way_waits(void **state)
{
	(void)state;
	vox_suspects s;
	vox_breaker b;
	uint64_t commits = 5;
	vox_action out[3];
	memset(&s, 0, sizeof(s));
	memset(&b, 0, sizeof(b));
	const round_item items[3] = {{VOX_FAULT_DATA, 1}, {VOX_FAULT_DATA, 2},
				     {VOX_FAULT_DATA, 3}};
	play_round(items, 3, &s, &b, &commits, out);
	for (int i = 0; i < 3; i++)
		assert_int_equal(out[i], VOX_ACT_NAK);
	/* the same batch fails again at once: no isolation, it waits */
	vox_batch_outcome o = {VOX_FAULT_DATA, 0, vox_breaker_may_isolate(&b, 50)};
	assert_int_equal(vox_dispose_batch(&o), VOX_STEP_WAIT);
	/* after the probe delay one round again: still nothing commits */
	o.may_isolate = vox_breaker_may_isolate(&b, 100);
	assert_int_equal(vox_dispose_batch(&o), VOX_STEP_ISOLATE);
	play_round(items, 3, &s, &b, &commits, out);
	for (int i = 0; i < 3; i++)
		assert_int_equal(out[i], VOX_ACT_NAK);
	/* the world is fixed: other messages commit; the suspects that
	 * still fail are now provably their own fault */
	commits++;
	vox_breaker_commit(&b);
	const round_item again[3] = {{VOX_FAULT_NONE, 1}, {VOX_FAULT_NONE, 2},
				     {VOX_FAULT_DATA, 3}};
	play_round(again, 3, &s, &b, &commits, out);
	assert_int_equal(out[0], VOX_ACT_ACK);
	assert_int_equal(out[1], VOX_ACT_ACK);
	assert_int_equal(out[2], VOX_ACT_DEAD_LETTER);
}

static void test_a_lone_poison_needs_another_commit(void **state)
{
	(void)state;
	vox_suspects s;
	vox_breaker b;
	uint64_t commits = 10;
	vox_action out[1];
	memset(&s, 0, sizeof(s));
	memset(&b, 0, sizeof(b));
	const round_item alone[1] = {{VOX_FAULT_DATA, 42}};
	play_round(alone, 1, &s, &b, &commits, out);
	assert_int_equal(out[0], VOX_ACT_NAK);
	/* redelivered alone, nothing committed in between: still waits */
	vox_breaker_commit(&b);
	play_round(alone, 1, &s, &b, &commits, out);
	assert_int_equal(out[0], VOX_ACT_NAK);
	/* another batch committed meanwhile */
	commits++;
	vox_breaker_commit(&b);
	play_round(alone, 1, &s, &b, &commits, out);
	assert_int_equal(out[0], VOX_ACT_DEAD_LETTER);
}

/* New plans as the applied messages double from 512, then every 2^24:
 * once per doubling whatever the batch sizes, never in between. */
static void test_replan_as_rows_double(void **state)
{
	(void)state;
	/* batches of 1: due exactly at the powers of two from 512 */
	int due = 0;
	for (uint64_t c = 0; c < 5000; c++)
		if (vox_replan_due(c, c + 1)) {
			due++;
			assert_true(c + 1 >= 512 && ((c + 1) & c) == 0);
		}
	assert_int_equal(due, 4); /* 512, 1024, 2048, 4096 */
	/* batches of 500: once per doubling, at the batch that passes it */
	due = 0;
	for (uint64_t c = 0; c < 100000; c += 500)
		due += vox_replan_due(c, c + 500);
	assert_int_equal(due, 8); /* 512 .. 65536 */
	assert_false(vox_replan_due(0, 511));
	assert_true(vox_replan_due(0, 512));
	assert_true(vox_replan_due(511, 1000));
	assert_false(vox_replan_due(512, 1023));
	assert_true(vox_replan_due(1000, 1024));
	assert_false(vox_replan_due(1024, 1024));
	assert_false(vox_replan_due(2000, 1000));
	assert_true(vox_replan_due((1u << 24) - 1, 1u << 24));
	assert_false(vox_replan_due(1u << 24, (1u << 24) + 5000));
	assert_true(vox_replan_due((2ull << 24) - 10, (2ull << 24) + 10));
	assert_false(vox_replan_due((2ull << 24) + 10, (3ull << 24) - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replan_as_rows_double),
		cmocka_unit_test(test_sqlstates_that_retry_at_once),
		cmocka_unit_test(test_data_errors_are_classes_22_and_23),
		cmocka_unit_test(test_faults_of_the_world_wait),
		cmocka_unit_test(test_statuses_without_a_sqlstate),
		cmocka_unit_test(test_batch_rows),
		cmocka_unit_test(test_undecodable_and_refused_are_dead_letters),
		cmocka_unit_test(test_applied_is_acked),
		cmocka_unit_test(test_deferral_counts_deferrals_not_deliveries),
		cmocka_unit_test(test_data_error_needs_evidence),
		cmocka_unit_test(test_faults_of_the_world_are_never_dead_letters),
		cmocka_unit_test(test_shutdown_naks_at_once),
		cmocka_unit_test(test_unknown_verdict_waits),
		cmocka_unit_test(test_delays),
		cmocka_unit_test(test_evidence_from_the_round_or_later_commits),
		cmocka_unit_test(test_suspects_memory_is_bounded),
		cmocka_unit_test(test_breaker),
		cmocka_unit_test(test_fault_logged_once_per_outage),
		cmocka_unit_test(test_isolation_dead_letters_only_the_poison),
		cmocka_unit_test(test_a_batch_failing_the_same_way_waits),
		cmocka_unit_test(test_a_lone_poison_needs_another_commit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
