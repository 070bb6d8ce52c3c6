/* Unit tests of vox_nats_set_urls (VOX_NATS_URL as one URL or a list;
 * that a list reaches every server is proven by test_scaleout) and of the
 * inbox prefixes every client uses (that the server lets each user read
 * only its own is proven by test_security). */
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

static void test_inbox_prefix_from_the_user(void **state)
{
	(void)state;
	char p[128];
	assert_true(vox_nats_inbox_prefix(p, sizeof(p), "calls", NULL));
	assert_string_equal(p, "_INBOX_calls");
	assert_true(vox_nats_inbox_prefix(p, sizeof(p), "dash-a5000000-0000-4000", ""));
	assert_string_equal(p, "_INBOX_dash-a5000000-0000-4000");
	/* no user: libnats's own default, for a server without users */
	assert_true(vox_nats_inbox_prefix(p, sizeof(p), NULL, NULL));
	assert_string_equal(p, "_INBOX");
	assert_true(vox_nats_inbox_prefix(p, sizeof(p), "", ""));
	assert_string_equal(p, "_INBOX");
	/* VOX_NATS_INBOX_PREFIX wins (a credentials file names no user) */
	assert_true(vox_nats_inbox_prefix(p, sizeof(p), "calls", "_I.calls"));
	assert_string_equal(p, "_I.calls");
	assert_true(vox_nats_inbox_prefix(p, sizeof(p), NULL, "_INBOX_svc"));
	assert_string_equal(p, "_INBOX_svc");
}

static void test_inbox_prefix_refused(void **state)
{
	(void)state;
	char p[128] = "unchanged";
	/* a dot in a user name would put its inbox inside another user's:
	 * "_INBOX_a.b.>" is under "_INBOX_a.>" */
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), "a.b", NULL));
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), "a*", NULL));
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), "a>", NULL));
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), "a b", NULL));
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), NULL, "_INBOX.>"));
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), NULL, "_INBOX."));
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), NULL, ".x"));
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), NULL, "a..b"));
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), NULL, "a\tb"));
	char longname[200];
	memset(longname, 'u', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), longname, NULL));
	assert_false(vox_nats_inbox_prefix(p, sizeof(p), NULL, longname));
	/* too small an output */
	char small[8];
	assert_false(vox_nats_inbox_prefix(small, sizeof(small), "calls", NULL));
	assert_string_equal(p, "unchanged");
}

static void test_new_inbox_under_the_prefix(void **state)
{
	(void)state;
	char a[128], b[128];
	assert_int_equal(vox_nats_new_inbox(a, sizeof(a), "_INBOX_admin"), NATS_OK);
	assert_int_equal(vox_nats_new_inbox(b, sizeof(b), "_INBOX_admin"), NATS_OK);
	assert_int_equal(strncmp(a, "_INBOX_admin.", 13), 0);
	assert_true(strlen(a) > 13);
	assert_null(strchr(a + 13, '.'));
	assert_string_not_equal(a, b);
	char small[16];
	assert_int_equal(vox_nats_new_inbox(small, sizeof(small), "_INBOX_admin"),
			 NATS_INVALID_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_url_and_lists),
		cmocka_unit_test(test_empty_entries_refused),
		cmocka_unit_test(test_at_most_32_urls),
		cmocka_unit_test(test_inbox_prefix_from_the_user),
		cmocka_unit_test(test_inbox_prefix_refused),
		cmocka_unit_test(test_new_inbox_under_the_prefix),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	nats_CloseAndWait(2000); /* the library's threads, started by natsOptions_Create */
	return rc;
}
