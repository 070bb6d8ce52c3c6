/*
 * Unit tests of vox-calls' pure half (src/core/calls_plan.c): folding a
 * batch of call events into one record per call, and the text-format array
 * literals the handler passes to Postgres. No servers.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/calls_plan.h"

#define ORG "2b6c1f0e-5d4a-4c3b-9a8f-7e6d5c4b3a21"
#define OTHER_ORG "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
#define CALL_A "00000000-0000-4000-8000-00000000000a"
#define CALL_B "00000000-0000-4000-8000-00000000000b"
#define CONTACT "11111111-1111-4111-8111-111111111111"
#define CALLER "+447700900001"
#define CLINIC "+442071234567"

static vox_str S(const char *s)
{
	return (vox_str){s, strlen(s)};
}

static void set_uuid(vox_uuid *u, const char *s)
{
	memcpy(u->s, s, 37);
}

static vox_event started(const char *id, const char *call, vox_direction dir,
			 int64_t at)
{
	vox_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = VOX_CALL_STARTED;
	vox_call_started *s = &ev.u.call_started;
	s->event_id = S(id);
	set_uuid(&s->org_id, ORG);
	set_uuid(&s->call_id, call);
	s->direction = dir;
	s->from_number = S(dir == VOX_DIR_INBOUND ? CALLER : CLINIC);
	s->to_number = S(dir == VOX_DIR_INBOUND ? CLINIC : CALLER);
	s->started_at = (vox_time){at, 0, true};
	return ev;
}

static vox_event ended(const char *id, const char *call, vox_call_status st,
		       int64_t at, int64_t duration)
{
	vox_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = VOX_CALL_ENDED;
	vox_call_ended *e = &ev.u.call_ended;
	e->event_id = S(id);
	set_uuid(&e->org_id, ORG);
	set_uuid(&e->call_id, call);
	e->status = st;
	e->ended_at = (vox_time){at, 0, true};
	e->duration_seconds = duration;
	return ev;
}

/* Fold all of evs; the verdicts land in verdict. */
static void build(vox_calls_plan *p, vox_event *evs, size_t n,
		  vox_status *verdict)
{
	const vox_event *ptrs[16];
	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++)
		ptrs[i] = &evs[i];
	vox_calls_plan_build(p, ptrs, n, verdict);
}

static bool str_is(vox_str s, const char *want)
{
	if (want == NULL)
		return s.ptr == NULL;
	return s.ptr != NULL && s.len == strlen(want) &&
	       memcmp(s.ptr, want, s.len) == 0;
}

static void test_started_then_ended(void **state)
{
	(void)state;
	vox_event evs[2] = {
		started("s1", CALL_A, VOX_DIR_INBOUND, 1800000000),
		ended("e1", CALL_A, VOX_CALL_COMPLETED, 1800000120, 115),
	};
	evs[0].u.call_started.caller_name = S("Ada");
	evs[0].u.call_started.vapi_call_id = S("vapi-1");
	vox_status v[2];
	vox_calls_plan p;
	build(&p, evs, 2, v);
	assert_int_equal(v[0], VOX_OK);
	assert_int_equal(v[1], VOX_OK);
	assert_int_equal(p.n, 1);
	const vox_calls_rec *r = &p.recs[0];
	assert_string_equal(r->call_id.s, CALL_A);
	assert_string_equal(r->org_id.s, ORG);
	assert_int_equal(r->direction, VOX_DIR_INBOUND);
	assert_true(str_is(r->from_number, CALLER));
	assert_true(str_is(r->to_number, CLINIC));
	assert_true(str_is(r->caller_name, "Ada"));
	assert_true(str_is(r->vapi_call_id, "vapi-1"));
	assert_ptr_equal(r->ended, &evs[1].u.call_ended);
	/* created_at is the call.started's started_at, not ended - duration */
	assert_int_equal(r->created_at.sec, 1800000000);
	assert_true(r->created_at.set);
	assert_int_equal(r->nevents, 2);
	vox_calls_plan_release(&p);
	assert_null(p.recs);
}

static void test_ended_then_started(void **state)
{
	(void)state;
	vox_event evs[2] = {
		ended("e1", CALL_A, VOX_CALL_COMPLETED, 1800000120, 100),
		started("s1", CALL_A, VOX_DIR_OUTBOUND, 1800000010),
	};
	vox_status v[2];
	vox_calls_plan p;
	build(&p, evs, 2, v);
	assert_int_equal(p.n, 1);
	const vox_calls_rec *r = &p.recs[0];
	/* the ended is kept, the started fills what the ended lacked */
	assert_ptr_equal(r->ended, &evs[0].u.call_ended);
	assert_int_equal(r->direction, VOX_DIR_OUTBOUND);
	assert_true(str_is(r->from_number, CLINIC));
	assert_true(str_is(r->to_number, CALLER));
	/* the started corrects the ended's estimate of the start */
	assert_int_equal(r->created_at.sec, 1800000010);
	vox_calls_plan_release(&p);
}

static void test_ended_alone_estimates_start(void **state)
{
	(void)state;
	vox_event evs[2] = {
		ended("e1", CALL_A, VOX_CALL_COMPLETED, 1800000120, 100),
		ended("e2", CALL_B, VOX_CALL_COMPLETED, 1800000500, 60),
	};
	evs[1].u.call_ended.started_at = (vox_time){1800000400, 5, true};
	evs[1].u.call_ended.direction = VOX_DIR_INBOUND;
	evs[1].u.call_ended.from_number = S(CALLER);
	evs[1].u.call_ended.to_number = S(CLINIC);
	vox_status v[2];
	vox_calls_plan p;
	build(&p, evs, 2, v);
	assert_int_equal(p.n, 2);
	/* no started_at: ended_at minus the duration; nothing else known */
	const vox_calls_rec *a = vox_calls_plan_find(&p, CALL_A);
	assert_non_null(a);
	assert_int_equal(a->created_at.sec, 1800000020);
	assert_int_equal(a->direction, VOX_DIR_NONE);
	assert_null(a->from_number.ptr);
	assert_null(a->contact_phone.ptr);
	assert_false(a->create_contact);
	/* started_at and numbers given: used, and the contact derived */
	const vox_calls_rec *b = vox_calls_plan_find(&p, CALL_B);
	assert_non_null(b);
	assert_int_equal(b->created_at.sec, 1800000400);
	assert_int_equal(b->created_at.nsec, 5);
	assert_true(str_is(b->contact_phone, CALLER));
	assert_true(b->create_contact);
	vox_calls_plan_release(&p);
}

static void test_duplicate_ended_first_wins(void **state)
{
	(void)state;
	vox_event evs[3] = {
		ended("e1", CALL_A, VOX_CALL_COMPLETED, 1800000120, 100),
		ended("e1", CALL_A, VOX_CALL_COMPLETED, 1800000120, 100),
		ended("e2", CALL_A, VOX_CALL_COMPLETED, 1800000999, 900),
	};
	evs[0].u.call_ended.transcript = S("first");
	evs[2].u.call_ended.transcript = S("second");
	vox_status v[3];
	vox_calls_plan p;
	build(&p, evs, 3, v);
	assert_int_equal(v[1], VOX_OK);
	assert_int_equal(v[2], VOX_OK);
	assert_int_equal(p.n, 1);
	assert_ptr_equal(p.recs[0].ended, &evs[0].u.call_ended);
	assert_true(str_is(p.recs[0].ended->transcript, "first"));
	assert_int_equal(p.recs[0].created_at.sec, 1800000020);
	assert_int_equal(p.recs[0].nevents, 3);
	vox_calls_plan_release(&p);
}

static void test_failed_stays_failed(void **state)
{
	(void)state;
	vox_event evs[3] = {
		ended("e1", CALL_A, VOX_CALL_FAILED, 1800000120, 0),
		started("s1", CALL_A, VOX_DIR_INBOUND, 1800000110),
		ended("e2", CALL_A, VOX_CALL_COMPLETED, 1800000200, 80),
	};
	vox_status v[3];
	vox_calls_plan p;
	build(&p, evs, 3, v);
	assert_int_equal(p.n, 1);
	assert_non_null(p.recs[0].ended);
	assert_int_equal(p.recs[0].ended->status, VOX_CALL_FAILED);
	assert_int_equal(p.recs[0].ended->duration_seconds, 0);
	assert_int_equal(p.recs[0].direction, VOX_DIR_INBOUND);
	vox_calls_plan_release(&p);
}

static void test_repeated_started_fills_only_absent(void **state)
{
	(void)state;
	vox_event evs[2] = {
		started("s1", CALL_A, VOX_DIR_INBOUND, 1800000000),
		started("s2", CALL_A, VOX_DIR_OUTBOUND, 1800000050),
	};
	evs[1].u.call_started.caller_name = S("Late name");
	set_uuid(&evs[1].u.call_started.contact_id, CONTACT);
	vox_status v[2];
	vox_calls_plan p;
	build(&p, evs, 2, v);
	const vox_calls_rec *r = &p.recs[0];
	assert_int_equal(r->direction, VOX_DIR_INBOUND);
	assert_true(str_is(r->from_number, CALLER));
	assert_int_equal(r->created_at.sec, 1800000000);
	assert_true(str_is(r->caller_name, "Late name"));
	assert_string_equal(r->contact_id.s, CONTACT);
	assert_null(r->ended);
	vox_calls_plan_release(&p);
}

static void test_contact_is_the_other_party(void **state)
{
	(void)state;
	vox_event evs[2] = {
		started("s1", CALL_A, VOX_DIR_INBOUND, 1800000000),
		started("s2", CALL_B, VOX_DIR_OUTBOUND, 1800000000),
	};
	/* distinct numbers on each side, so the test sees which is taken */
	evs[0].u.call_started.from_number = S("+15550000001");
	evs[0].u.call_started.to_number = S("+15550000002");
	evs[1].u.call_started.from_number = S("+15550000003");
	evs[1].u.call_started.to_number = S("+15550000004");
	vox_status v[2];
	vox_calls_plan p;
	build(&p, evs, 2, v);
	const vox_calls_rec *in = vox_calls_plan_find(&p, CALL_A);
	const vox_calls_rec *out = vox_calls_plan_find(&p, CALL_B);
	assert_non_null(in);
	assert_non_null(out);
	assert_true(str_is(in->contact_phone, "+15550000001"));
	assert_true(in->create_contact);
	assert_true(str_is(out->contact_phone, "+15550000004"));
	assert_false(out->create_contact); /* matched, never created */
	vox_calls_plan_release(&p);
}

static void test_sorted_skips_and_conflicts(void **state)
{
	(void)state;
	vox_event evs[4] = {
		started("s1", CALL_B, VOX_DIR_INBOUND, 1800000000),
		started("s2", CALL_A, VOX_DIR_INBOUND, 1800000000),
		ended("e1", CALL_B, VOX_CALL_COMPLETED, 1800000100, 100),
		ended("e2", CALL_A, VOX_CALL_COMPLETED, 1800000100, 100),
	};
	/* the same call_id under another org, later in the batch */
	set_uuid(&evs[2].u.call_ended.org_id, OTHER_ORG);
	vox_event payment;
	memset(&payment, 0, sizeof(payment));
	payment.kind = VOX_PAYMENT_SUCCEEDED;
	const vox_event *ptrs[6] = {&evs[0], &evs[1], NULL, &evs[2], &evs[3],
				    &payment};
	vox_status v[6];
	vox_calls_plan p;
	vox_calls_plan_build(&p, ptrs, 6, v);
	assert_int_equal(v[0], VOX_OK);
	assert_int_equal(v[1], VOX_OK);
	assert_int_equal(v[2], VOX_OK);          /* skipped */
	assert_int_equal(v[3], VOX_E_CONFLICT);  /* other org */
	assert_int_equal(v[4], VOX_OK);
	assert_int_equal(v[5], VOX_E_INVALID);   /* not a call event */
	assert_int_equal(p.n, 2);
	assert_string_equal(p.recs[0].call_id.s, CALL_A); /* sorted */
	assert_string_equal(p.recs[1].call_id.s, CALL_B);
	assert_non_null(p.recs[0].ended);
	assert_null(p.recs[1].ended); /* its ended was refused */
	assert_int_equal(p.recs[1].nevents, 1);
	assert_null(vox_calls_plan_find(&p, CONTACT));
	vox_calls_plan_release(&p);

	/* an empty batch */
	vox_calls_plan_build(&p, ptrs, 0, v);
	assert_int_equal(p.n, 0);
	vox_calls_plan_release(&p);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_started_then_ended),
		cmocka_unit_test(test_ended_then_started),
		cmocka_unit_test(test_ended_alone_estimates_start),
		cmocka_unit_test(test_duplicate_ended_first_wins),
		cmocka_unit_test(test_failed_stays_failed),
		cmocka_unit_test(test_repeated_started_fills_only_absent),
		cmocka_unit_test(test_contact_is_the_other_party),
		cmocka_unit_test(test_sorted_skips_and_conflicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
