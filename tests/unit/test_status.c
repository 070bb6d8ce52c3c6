/* Unit tests of the status table: every status has a name and a class. */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

static void test_every_status_named(void **state)
{
	(void)state;
	for (int s = 0; s < VOX_STATUS_COUNT; s++) {
		const char *n = vox_status_str((vox_status)s);
		assert_non_null(n);
		assert_string_not_equal(n, "unknown");
		assert_true(vox_status_code((vox_status)s) >= 200);
	}
	assert_string_equal(vox_status_str((vox_status)999), "unknown");
}

static void test_transient_split(void **state)
{
	(void)state;
	assert_true(vox_status_is_transient(VOX_E_UNAVAILABLE));
	assert_true(vox_status_is_transient(VOX_E_RETRY));
	assert_true(vox_status_is_transient(VOX_E_TIMEOUT));
	assert_false(vox_status_is_transient(VOX_E_INVALID));
	assert_false(vox_status_is_transient(VOX_E_CONFLICT));
	assert_false(vox_status_is_transient(VOX_OK));
	assert_int_equal(vox_status_code(VOX_E_CONFLICT), 409);
	assert_int_equal(vox_status_code(VOX_E_UNAVAILABLE), 503);
	assert_int_equal(vox_status_code(VOX_E_NOT_FOUND), 404);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_status_named),
		cmocka_unit_test(test_transient_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
