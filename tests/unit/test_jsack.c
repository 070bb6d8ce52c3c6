/*
 * Unit tests of the ack subject parser (src/core/jsack.c): both shapes
 * JetStream sends, and every malformed subject refused with nothing kept.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/jsack.h"

static void test_server_2_9_shape(void **state)
{
	(void)state;
	vox_js_ack a;
	assert_true(vox_js_ack_parse(&a,
		"$JS.ACK.EVENTS.vox-calls.3.1042.977.1764770000123456789.12"));
	assert_int_equal(a.delivered, 3);
	assert_int_equal(a.stream_seq, 1042);
	assert_int_equal(a.consumer_seq, 977);
	assert_true(a.timestamp_ns == 1764770000123456789LL);
	assert_int_equal(a.pending, 12);
}

static void test_domain_and_account_shape(void **state)
{
	(void)state;
	vox_js_ack a;
	/* domain "_" (none), account hash, then the same fields, a token */
	assert_true(vox_js_ack_parse(&a,
		"$JS.ACK._.ACCHASH.EVENTS.vox-billing.1.7.5.1764770000000000000.0.abc"));
	assert_int_equal(a.delivered, 1);
	assert_int_equal(a.stream_seq, 7);
	assert_int_equal(a.consumer_seq, 5);
	assert_int_equal(a.pending, 0);
	assert_true(vox_js_ack_parse(&a,
		"$JS.ACK.hub.ACC.EVENTS.c.2.8.6.1764770000000000000.4"));
	assert_int_equal(a.stream_seq, 8);
	assert_int_equal(a.pending, 4);
}

static void test_malformed_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		NULL,
		"",
		"_INBOX.abc.1",
		"$JS.ACK.EVENTS.c.1.2.3.4",            /* too few */
		"$JS.ACK.EVENTS.c.1.2.3.4.5.6",        /* 10 tokens */
		"$JS.ACK.EVENTS.c.x.2.3.4.5",          /* not a number */
		"$JS.ACK.EVENTS.c.1.-2.3.4.5",
		"$JS.ACK.EVENTS.c.1..3.4.5",           /* empty token */
		"$JS.ACK.EVENTS.c.1.2.3.4.5.",
		"$JS.ACK.EVENTS.c.1.18446744073709551616.3.4.5", /* 2^64 */
		"$JS.ACK.EVENTS.c.1.2.3.9223372036854775808.5",  /* ns > int64 */
		"$JS.ACKX.EVENTS.c.1.2.3.4.5",
		"$JS.ACK.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p", /* 18 tokens */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vox_js_ack a;
		memset(&a, 0x5a, sizeof(a));
		assert_false(vox_js_ack_parse(&a, bad[i]));
		assert_int_equal(a.stream_seq, 0);
		assert_int_equal(a.delivered, 0);
	}
	vox_js_ack a;
	assert_true(vox_js_ack_parse(&a,
		"$JS.ACK.EVENTS.c.1.18446744073709551615.3.4.5"));
	assert_true(a.stream_seq == UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_2_9_shape),
		cmocka_unit_test(test_domain_and_account_shape),
		cmocka_unit_test(test_malformed_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
