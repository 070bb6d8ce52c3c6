/*
 * Unit: credentials.*'s request decoder (src/core/credentials_request.c):
 * what it keeps of a valid request, and the exact refusal of each invalid
 * one, as the vault answers and audits it.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>
#include <msgpack.h>

#include "core/credentials_request.h"
#include "req_build.h"

static void bin(req *r, const void *p, size_t n)
{
	msgpack_pack_bin(&r->pk, n);
	msgpack_pack_bin_body(&r->pk, p, n);
}

/* vox_cred_req_parse with the error's message copied to err (n bytes). */
static vox_status cparse(vox_cred_req *q, const void *data, size_t len,
			 char *err, size_t n)
{
	vox_error e = {0};
	vox_status st = vox_cred_req_parse(q, data, len, &e);
	snprintf(err, n, "%s", st == VOX_OK ? "" : e.message);
	if (st != VOX_OK) /* every refusal has a stable reason */
		assert_true(e.code != NULL && e.status == st);
	return st;
}

/* Decode r (and free its buffer); *q must be released by the caller. */
static vox_status parse(req *r, vox_cred_req *q, char *err, size_t n)
{
	vox_status st = cparse(q, r->sb.data, r->sb.size, err, n);
	msgpack_sbuffer_destroy(&r->sb);
	return st;
}

static void test_a_put_keeps_every_field(void **state)
{
	(void)state;
	uint8_t key[32];
	memset(key, 7, sizeof(key));
	req r;
	vox_cred_req q;
	char err[200];
	req_init(&r, 6);
	req_key(&r, "provider"); req_key(&r, "twilio");
	req_key(&r, "type"); req_key(&r, "outbound");
	req_key(&r, "config"); bin(&r, "{\"sid\":1}", 9);
	req_key(&r, "reply_key"); bin(&r, key, sizeof(key));
	req_key(&r, "metadata");
	msgpack_pack_map(&r.pk, 2);
	req_key(&r, "label"); req_key(&r, "say \"hi\"");
	req_key(&r, "owner"); req_key(&r, "caf\xc3\xa9");
	req_key(&r, "org_id"); req_key(&r, "not the org: the subject's is");
	assert_int_equal(parse(&r, &q, err, sizeof(err)), VOX_OK);
	assert_true(q.complete);
	assert_true(q.has_provider);
	assert_string_equal(q.provider, "twilio");
	assert_true(q.has_type);
	assert_string_equal(q.type, "outbound");
	assert_true(q.has_config);
	assert_int_equal(q.config_len, 9);
	assert_memory_equal(q.config, "{\"sid\":1}", 9);
	assert_true(q.has_reply_key);
	assert_memory_equal(q.reply_key, key, 32);
	assert_string_equal(q.metadata.data,
			    "{\"label\":\"say \\\"hi\\\"\",\"owner\":\"caf\xc3\xa9\"}");
	vox_cred_req_release(&q);
}

static void test_empty_bodies_take_the_defaults(void **state)
{
	(void)state;
	vox_cred_req q;
	char err[200];
	assert_int_equal(cparse(&q, "", 0, err, sizeof(err)), VOX_OK);
	assert_true(q.complete);
	assert_false(q.has_provider || q.has_type || q.has_config || q.has_reply_key);
	assert_string_equal(q.type, "default");
	assert_int_equal(q.metadata.len, 0);
	vox_cred_req_release(&q);
	req r;
	req_init(&r, 2);
	req_key(&r, "metadata"); msgpack_pack_nil(&r.pk); /* nil: absent */
	req_key(&r, "x"); msgpack_pack_int(&r.pk, 1);
	assert_int_equal(parse(&r, &q, err, sizeof(err)), VOX_OK);
	assert_int_equal(q.metadata.len, 0);
	vox_cred_req_release(&q);
}

typedef void (*build_fn)(req *r);

static void provider_unknown(req *r) { req_init(r, 1); req_key(r, "provider"); req_key(r, "acme"); }
static void provider_int(req *r) { req_init(r, 1); req_key(r, "provider"); msgpack_pack_int(&r->pk, 1); }
static void type_bad(req *r) { req_init(r, 1); req_key(r, "type"); req_key(r, "primary"); }
static void config_int(req *r) { req_init(r, 1); req_key(r, "config"); msgpack_pack_int(&r->pk, 5); }
static void key_short(req *r) { req_init(r, 1); req_key(r, "reply_key"); bin(r, "kkkk", 4); }
static void key_str(req *r) { req_init(r, 1); req_key(r, "reply_key"); req_key(r, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"); }
static void meta_list(req *r) { req_init(r, 1); req_key(r, "metadata"); msgpack_pack_array(&r->pk, 0); }
static void meta_int(req *r) { req_init(r, 1); req_key(r, "metadata"); msgpack_pack_map(&r->pk, 1); req_key(r, "a"); msgpack_pack_int(&r->pk, 1); }
static void meta_nul(req *r)
{
	req_init(r, 1);
	req_key(r, "metadata");
	msgpack_pack_map(&r->pk, 1);
	req_key(r, "a");
	msgpack_pack_str(&r->pk, 3);
	msgpack_pack_str_body(&r->pk, "x\0y", 3);
}
static void meta_big(req *r)
{
	char v[4200];
	memset(v, 'm', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	req_init(r, 1);
	req_key(r, "metadata");
	msgpack_pack_map(&r->pk, 1);
	req_key(r, "a");
	req_key(r, v);
}
static void provider_twice(req *r) { req_init(r, 2); req_key(r, "provider"); req_key(r, "vapi"); req_key(r, "provider"); req_key(r, "twilio"); }
static void type_nil_twice(req *r) { req_init(r, 2); req_key(r, "type"); req_key(r, "inbound"); req_key(r, "type"); msgpack_pack_nil(&r->pk); }
static void meta_twice(req *r) { req_init(r, 2); req_key(r, "metadata"); msgpack_pack_nil(&r->pk); req_key(r, "metadata"); msgpack_pack_map(&r->pk, 0); }
static void key_int(req *r) { req_init(r, 1); msgpack_pack_int(&r->pk, 1); msgpack_pack_int(&r->pk, 2); }
static void not_map(req *r) { msgpack_sbuffer_init(&r->sb); msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write); msgpack_pack_array(&r->pk, 0); }
static void trailing(req *r) { req_init(r, 0); msgpack_pack_map(&r->pk, 0); }

static void test_each_refusal_says_why(void **state)
{
	(void)state;
	static const struct {
		build_fn build;
		vox_status st;
		const char *err;
	} cases[] = {
		{provider_unknown, VOX_E_INVALID, "provider: must be one of vapi|twilio|"
		 "google_calendar|resend|elevenlabs|openai|deepgram|cartesia|"
		 "outlook_calendar|hubspot|salesforce|stripe"},
		{provider_int, VOX_E_INVALID, "provider: must be a string"},
		{type_bad, VOX_E_INVALID, "type: must be one of default|inbound|outbound"},
		{config_int, VOX_E_INVALID, "config: must be a bin or a str"},
		{key_short, VOX_E_INVALID, "reply_key: must be 32 bytes"},
		{key_str, VOX_E_INVALID, "reply_key: must be a bin"},
		{meta_list, VOX_E_INVALID, "metadata: must be a map of strings"},
		{meta_int, VOX_E_INVALID, "metadata: must be a map of strings"},
		{meta_nul, VOX_E_INVALID, "metadata: must be UTF-8 text without NUL bytes"},
		{meta_big, VOX_E_TOO_LARGE, "metadata: larger than 4096 bytes"},
		/* the encoding rules' duplicate_key, even when one is nil */
		{provider_twice, VOX_E_DECODE, "provider: appears twice"},
		{type_nil_twice, VOX_E_DECODE, "type: appears twice"},
		{meta_twice, VOX_E_DECODE, "metadata: appears twice"},
		{key_int, VOX_E_DECODE, "map key 0 is not a string"},
		{not_map, VOX_E_DECODE, "request must be a msgpack map with string keys"},
		{trailing, VOX_E_DECODE, "1 bytes after the map"},
	};
	for (size_t i = 0; i < VOX_NELEM(cases); i++) {
		req r;
		vox_cred_req q;
		char err[200] = "";
		cases[i].build(&r);
		vox_status st = parse(&r, &q, err, sizeof(err));
		if (st != cases[i].st || strcmp(err, cases[i].err) != 0)
			fail_msg("case %zu: %s \"%s\", wanted %s \"%s\"", i,
				 vox_status_str(st), err, vox_status_str(cases[i].st),
				 cases[i].err);
		assert_false(q.complete);
		vox_cred_req_release(&q);
	}
}

static void test_over_the_size_limit_is_413(void **state)
{
	(void)state;
	size_t n = VOX_CRED_MAX_REQUEST + 1;
	char *body = vox_calloc(1, n);
	vox_cred_req q;
	char err[200];
	assert_int_equal(cparse(&q, body, n, err, sizeof(err)), VOX_E_TOO_LARGE);
	assert_non_null(strstr(err, "over the"));
	vox_cred_req_release(&q);
	/* at the limit it is read (and refused for what it is, not its size) */
	assert_int_equal(cparse(&q, body, n - 1, err, sizeof(err)), VOX_E_DECODE);
	vox_cred_req_release(&q);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_put_keeps_every_field),
		cmocka_unit_test(test_empty_bodies_take_the_defaults),
		cmocka_unit_test(test_each_refusal_says_why),
		cmocka_unit_test(test_over_the_size_limit_is_413),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
