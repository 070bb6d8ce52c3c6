/* Unit tests of vox_nats_set_urls: VOX_NATS_URL as one URL or a list.
 * (That a list reaches every server is proven by test_scaleout.) */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "io/natsconn.h"

static natsStatus set(const char *list)
{
	natsOptions *o = NULL;
	assert_int_equal(natsOptions_Create(&o), NATS_OK);
	natsStatus s = vox_nats_set_urls(o, list);
	natsOptions_Destroy(o);
	return s;
}

static void test_one_url_and_lists(void **state)
{
	(void)state;
	assert_int_equal(set("nats://127.0.0.1:4222"), NATS_OK);
	assert_int_equal(set("nats://10.0.0.1:4222,nats://10.0.0.2:4222"), NATS_OK);
	assert_int_equal(set(" nats://n1:4222 , nats://n2:4222,\tnats://n3:4222 "), NATS_OK);
}

static void test_empty_entries_refused(void **state)
{
	(void)state;
	assert_int_equal(set("nats://n1:4222,,nats://n2:4222"), NATS_INVALID_ARG);
	assert_int_equal(set("nats://n1:4222,"), NATS_INVALID_ARG);
	assert_int_equal(set(", nats://n1:4222"), NATS_INVALID_ARG);
	assert_int_equal(set("nats://n1:4222, ,nats://n2:4222"), NATS_INVALID_ARG);
}

static void test_at_most_32_urls(void **state)
{
	(void)state;
	char list[2048];
	size_t off = 0;
	for (int i = 0; i < 33; i++) {
		if (i == 32)
			assert_int_equal(set(list), NATS_OK);
		off += (size_t)snprintf(list + off, sizeof(list) - off,
					"%snats://n%d:4222", i ? "," : "", i);
	}
	assert_int_equal(set(list), NATS_INVALID_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_url_and_lists),
		cmocka_unit_test(test_empty_entries_refused),
		cmocka_unit_test(test_at_most_32_urls),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	nats_CloseAndWait(2000); /* the library's threads, started by natsOptions_Create */
	return rc;
}
