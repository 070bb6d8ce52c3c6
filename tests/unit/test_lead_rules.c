/* The lead rules of vox-leads (src/core/lead_rules.c). */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/lead_rules.h"

static void test_status_derived_from_score(void **state)
{
	(void)state;
	assert_int_equal(vox_leads_status(100, VOX_LEAD_NONE), VOX_LEAD_HOT);
	assert_int_equal(vox_leads_status(70, VOX_LEAD_NONE), VOX_LEAD_HOT);
	assert_int_equal(vox_leads_status(69, VOX_LEAD_NONE), VOX_LEAD_WARM);
	assert_int_equal(vox_leads_status(40, VOX_LEAD_NONE), VOX_LEAD_WARM);
	assert_int_equal(vox_leads_status(39, VOX_LEAD_NONE), VOX_LEAD_COLD);
	assert_int_equal(vox_leads_status(0, VOX_LEAD_NONE), VOX_LEAD_COLD);
	/* an explicit status wins over the score */
	assert_int_equal(vox_leads_status(95, VOX_LEAD_CONTACTED), VOX_LEAD_CONTACTED);
	assert_int_equal(vox_leads_status(10, VOX_LEAD_HOT), VOX_LEAD_HOT);
	assert_string_equal(vox_leads_status_name(VOX_LEAD_WARM), "warm");
	assert_string_equal(vox_leads_status_name(VOX_LEAD_CONTACTED), "contacted");
}

static void test_urgency(void **state)
{
	(void)state;
	assert_int_equal(vox_leads_urgency(80), VOX_URGENCY_HIGH);
	assert_int_equal(vox_leads_urgency(100), VOX_URGENCY_HIGH);
	assert_int_equal(vox_leads_urgency(79), VOX_URGENCY_MEDIUM);
	assert_int_equal(vox_leads_urgency(70), VOX_URGENCY_MEDIUM);
}

static void test_older_score_never_replaces_newer(void **state)
{
	(void)state;
	vox_time none = {0, 0, false};
	vox_time t1 = {1795000000, 0, true};
	vox_time t1b = {1795000000, 5, true};
	vox_time t2 = {1795000001, 0, true};
	assert_true(vox_leads_newer(&t1, &none));   /* nothing stored yet */
	assert_true(vox_leads_newer(&t2, &t1));
	assert_false(vox_leads_newer(&t1, &t2));
	assert_true(vox_leads_newer(&t1b, &t1));    /* nanoseconds count */
	assert_false(vox_leads_newer(&t1, &t1b));
	assert_true(vox_leads_newer(&t1, &t1));     /* as new: the later event */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_derived_from_score),
		cmocka_unit_test(test_urgency),
		cmocka_unit_test(test_older_score_never_replaces_newer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
