/*
 * The request vectors (subjects/vectors/json/requests.json): each body,
 * decoded by the parser of its subject (query.* with that endpoint's
 * keys, billing.authorize, credentials.*), is accepted, or refused with
 * the case's reason and field. The same file is for any client that
 * wants to check what vox will say to its requests.
 */
#include "core/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "core/authorize.h"
#include "core/buf.h"
#include "core/credentials_request.h"
#include "core/json.h"
#include "core/query_request.h"

static bool unhex(vox_buf *out, const char *s)
{
	for (; s[0] && s[1]; s += 2) {
		unsigned v;
		if (sscanf(s, "%2x", &v) != 1)
			return false;
		vox_buf_putc(out, (char)v);
	}
	return *s == '\0';
}

/* Decode body as a request on subject; the status, err filled. */
static vox_status parse(const char *subject, const vox_buf *body, vox_error *err)
{
	const char *data = body->data ? body->data : "";
	if (strncmp(subject, "query.", 6) == 0) {
		for (size_t i = 0; i < VOX_Q_COUNT; i++) {
			if (strcmp(subject + 6, vox_query_defs[i].name) != 0)
				continue;
			vox_qreq q;
			vox_qcursor_kind kind = i == VOX_Q_TRANSACTIONS
						? VOX_QCURSOR_TRANSACTIONS : VOX_QCURSOR_CALLS;
			return vox_qreq_parse(&q, vox_query_defs[i].keys, kind, data,
					      body->len, err);
		}
		fail_msg("no query endpoint %s", subject);
	}
	if (strcmp(subject, "billing.authorize") == 0) {
		vox_authorize_req a;
		return vox_authorize_parse(&a, data, body->len, err);
	}
	assert_int_equal(strncmp(subject, "credentials.", 12), 0);
	vox_cred_req c;
	vox_status st = vox_cred_req_parse(&c, data, body->len, err);
	vox_cred_req_release(&c);
	return st;
}

static void test_every_request_vector(void **state)
{
	(void)state;
	const char *src = getenv("VOX_SOURCE_DIR");
	assert_non_null(src);
	char path[1024];
	snprintf(path, sizeof(path), "%s/subjects/vectors/json/requests.json", src);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	vox_buf text;
	vox_buf_init(&text);
	char chunk[4096];
	size_t k;
	while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0)
		vox_buf_append(&text, chunk, k);
	fclose(f);
	vox_json *doc = vox_json_parse(text.data, text.len, NULL);
	assert_non_null(doc);
	assert_string_equal(vox_json_str(vox_json_get(doc, "format")),
			    "vox-request-vectors/1");
	const vox_json *cases = vox_json_get(doc, "cases");
	int accepted = 0, refused = 0, failures = 0;
	for (size_t i = 0; i < vox_json_len(cases); i++) {
		const vox_json *c = vox_json_at(cases, i);
		const char *subject = vox_json_str(vox_json_get(c, "subject"));
		const char *name = vox_json_str(vox_json_get(c, "name"));
		vox_buf body;
		vox_buf_init(&body);
		assert_true(unhex(&body, vox_json_str(vox_json_get(c, "hex"))));
		vox_error err;
		memset(&err, 0, sizeof(err));
		vox_status st = parse(subject, &body, &err);
		const vox_json *want = vox_json_get(c, "error");
		if (!want) {
			accepted++;
			if (st != VOX_OK) {
				fprintf(stderr, "  FAIL %s: %s: refused (%s: %s)\n", subject,
					name, err.code, err.message);
				failures++;
			}
		} else {
			refused++;
			const char *code = vox_json_str(vox_json_get(want, "code"));
			const char *field = vox_json_str(vox_json_get(want, "field"));
			if (st == VOX_OK || !err.code || strcmp(err.code, code) != 0 ||
			    strcmp(err.field, field ? field : "") != 0) {
				fprintf(stderr, "  FAIL %s: %s: got %s/%s, want %s/%s\n",
					subject, name, st == VOX_OK ? "accepted" : err.code,
					err.field, code, field ? field : "");
				failures++;
			}
		}
		vox_buf_release(&body);
	}
	printf("  %d accepted and %d refused request vectors\n", accepted, refused);
	vox_json_free(doc);
	vox_buf_release(&text);
	assert_true(accepted >= 10 && refused >= 10);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_request_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
