/*
 * The contract's test vectors (subjects/vectors/<subject>.vec) decoded and
 * re-encoded. Each valid case must decode to exactly its canonical JSON,
 * survive encode -> decode unchanged, and (when marked canonical) re-encode
 * to the very same bytes; each invalid case must fail with its error code
 * and field. The file format is described in subjects/vectors/README.md.
 * The same cases as JSON (subjects/vectors/json/<subject>.json, for
 * other languages) are run the same way, and must be as many.
 */
#include "core/common.h"

#include <dirent.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/json.h"
#include "vox/event.h"
#include "vox/subjects.h"

typedef struct vcase {
	char name[160];
	vox_buf hex;
	vox_buf json;
	char subject[200];
	char err_code[40];
	char err_field[48];
	bool canonical;
	bool has_error;
} vcase;

static int total_valid, total_invalid, failures;

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex text (whitespace ignored) to bytes; false on a bad digit. */
static bool unhex(const char *s, vox_buf *out)
{
	int hi = -1;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t')
			continue;
		int v = hexval(*s);
		if (v < 0)
			return false;
		if (hi < 0) {
			hi = v;
		} else {
			vox_buf_putc(out, (char)(hi * 16 + v));
			hi = -1;
		}
	}
	return hi < 0;
}

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "  FAIL %s: ", c->name);               \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			failures++;                                            \
			goto out;                                              \
		}                                                              \
	} while (0)

static void run_case(vox_event_kind kind, vcase *c)
{
	vox_buf bytes;
	vox_buf_init(&bytes);
	unsigned char *enc = NULL;
	char *json = NULL, *json2 = NULL;
	vox_event ev, ev2;
	vox_error err;
	memset(&err, 0, sizeof(err));

	CHECK(unhex(c->hex.data ? c->hex.data : "", &bytes), "bad hex");
	vox_status st = c->subject[0]
		? vox_event_decode_subject(&ev, c->subject, bytes.data, bytes.len, &err)
		: vox_event_decode(&ev, kind, bytes.data, bytes.len, &err);
	if (c->has_error) {
		total_invalid++;
		CHECK(st != VOX_OK, "decoded, expected error %s", c->err_code);
		CHECK(strcmp(err.code, c->err_code) == 0,
		      "error %s (%s), expected %s", err.code, err.message,
		      c->err_code);
		CHECK(strcmp(err.field, strcmp(c->err_field, "-") ? c->err_field : "") == 0,
		      "error field '%s', expected '%s'", err.field, c->err_field);
		CHECK(strlen(err.message) > 0, "empty error message");
		goto out;
	}
	total_valid++;
	CHECK(st == VOX_OK, "expected success, got %s: %s", err.code,
	      err.message);
	json = vox_event_to_json(&ev);
	CHECK(c->json.data && strcmp(json, c->json.data) == 0,
	      "decoded to\n    %s\n  expected\n    %s", json,
	      c->json.data ? c->json.data : "(no json: line)");
	size_t len = 0;
	CHECK(vox_event_encode(&enc, &len, &ev, &err) == VOX_OK,
	      "re-encode failed: %s", err.message);
	CHECK(vox_event_decode(&ev2, kind, enc, len, &err) == VOX_OK,
	      "re-decode failed: %s", err.message);
	json2 = vox_event_to_json(&ev2);
	CHECK(strcmp(json, json2) == 0, "round trip changed the value:\n    %s",
	      json2);
	if (c->canonical)
		CHECK(len == bytes.len && memcmp(enc, bytes.data, len) == 0,
		      "canonical bytes differ after re-encoding");
out:
	free(enc);
	free(json);
	free(json2);
	vox_buf_release(&bytes);
}

static void reset_case(vcase *c)
{
	vox_buf_release(&c->hex);
	vox_buf_release(&c->json);
	memset(c, 0, sizeof(*c));
}

static int run_file(const char *path, vox_event_kind kind, int *nvalid,
		    int *ninvalid)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[1 << 16];
	vcase c;
	memset(&c, 0, sizeof(c));
	bool open_case = false;
	int before_v = total_valid, before_i = total_invalid;

	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (strncmp(line, "== ", 3) == 0) {
			if (open_case)
				run_case(kind, &c);
			reset_case(&c);
			snprintf(c.name, sizeof(c.name), "%.60s: %.90s",
				 strrchr(path, '/') + 1, line + 3);
			open_case = true;
		} else if (strncmp(line, "hex:", 4) == 0) {
			vox_buf_puts(&c.hex, line + 4);
		} else if (strncmp(line, "json: ", 6) == 0) {
			vox_buf_puts(&c.json, line + 6);
		} else if (strncmp(line, "subject: ", 9) == 0) {
			snprintf(c.subject, sizeof(c.subject), "%.190s", line + 9);
		} else if (strcmp(line, "canonical: yes") == 0) {
			c.canonical = true;
		} else if (strncmp(line, "error: ", 7) == 0) {
			c.has_error = true;
			if (sscanf(line + 7, "%39s %47s", c.err_code, c.err_field) != 2) {
				fprintf(stderr, "  FAIL %s: bad error line\n", c.name);
				failures++;
			}
		} else {
			fprintf(stderr, "  FAIL %s: unknown line '%.40s'\n", path, line);
			failures++;
		}
	}
	if (open_case)
		run_case(kind, &c);
	reset_case(&c);
	fclose(f);
	*nvalid = total_valid - before_v;
	*ninvalid = total_invalid - before_i;
	return 0;
}

/* The JSON form of a vector file: {"kind", "cases": [{"name", "hex",
 * "subject"?, "json_text" + "canonical" | "error": {"code", "field"}}]}. */
static void run_json_file(const char *path, vox_event_kind kind, int *nvalid,
			  int *ninvalid)
{
	vox_buf text;
	vox_buf_init(&text);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char chunk[1 << 16];
	size_t k;
	while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0)
		vox_buf_append(&text, chunk, k);
	fclose(f);
	vox_json *doc = vox_json_parse(text.data, text.len, NULL);
	vox_buf_release(&text);
	assert_non_null(doc);
	assert_string_equal(vox_json_str(vox_json_get(doc, "kind")),
			    vox_event_kind_name(kind));
	const vox_json *cases = vox_json_get(doc, "cases");
	int before_v = total_valid, before_i = total_invalid;
	for (size_t i = 0; i < vox_json_len(cases); i++) {
		const vox_json *j = vox_json_at(cases, i);
		vcase c;
		memset(&c, 0, sizeof(c));
		snprintf(c.name, sizeof(c.name), "%.60s: %.90s", strrchr(path, '/') + 1,
			 vox_json_str(vox_json_get(j, "name")));
		vox_buf_puts(&c.hex, vox_json_str(vox_json_get(j, "hex")));
		const char *subject = vox_json_str(vox_json_get(j, "subject"));
		if (subject)
			snprintf(c.subject, sizeof(c.subject), "%.190s", subject);
		const vox_json *err = vox_json_get(j, "error");
		if (err) {
			const char *field = vox_json_str(vox_json_get(err, "field"));
			c.has_error = true;
			snprintf(c.err_code, sizeof(c.err_code), "%s",
				 vox_json_str(vox_json_get(err, "code")));
			snprintf(c.err_field, sizeof(c.err_field), "%s",
				 field ? field : "-");
		} else {
			vox_buf_puts(&c.json, vox_json_str(vox_json_get(j, "json_text")));
			c.canonical = vox_json_bool(vox_json_get(j, "canonical"));
		}
		run_case(kind, &c);
		reset_case(&c);
	}
	vox_json_free(doc);
	*nvalid = total_valid - before_v;
	*ninvalid = total_invalid - before_i;
}

static void test_every_vector(void **state)
{
	(void)state;
	const char *src = getenv("VOX_SOURCE_DIR");
	assert_non_null(src);
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/subjects/vectors", src);
	bool covered[VOX_EVENT_KIND_COUNT] = {false};

	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".vec") != 0)
			continue;
		vox_event_kind kind;
		if (!vox_event_kind_from_name(&kind, e->d_name, n - 4)) {
			fprintf(stderr, "  FAIL %s: no such subject\n", e->d_name);
			failures++;
			continue;
		}
		char path[2048];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		int nv = 0, ni = 0, jv = 0, ji = 0;
		run_file(path, kind, &nv, &ni);
		printf("  %-24s %3d valid %3d invalid\n", e->d_name, nv, ni);
		snprintf(path, sizeof(path), "%s/json/%.*s.json", dir, (int)(n - 4),
			 e->d_name);
		run_json_file(path, kind, &jv, &ji);
		if (jv != nv || ji != ni) {
			fprintf(stderr, "  FAIL %s: %d valid and %d invalid, the .vec"
				" %d and %d\n", path, jv, ji, nv, ni);
			failures++;
		}
		/* every kind needs real coverage on both sides */
		if (nv >= 3 && ni >= 5)
			covered[kind] = true;
	}
	closedir(d);
	for (int k = 0; k < VOX_EVENT_KIND_COUNT; k++) {
		if (!covered[k])
			fprintf(stderr, "  FAIL %s: too few vectors\n",
				vox_event_kind_name((vox_event_kind)k));
		assert_true(covered[k]);
	}
	printf("  %d valid and %d invalid cases\n", total_valid, total_invalid);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
