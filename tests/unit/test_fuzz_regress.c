/*
 * The fuzzers' regression vectors (tests/fuzz/regress/<target>/<name>)
 * replayed through the same decoder entry points and the same properties
 * as the libFuzzer targets (tests/fuzz/fuzz_props.h), so that they run on
 * every `make test` also where clang is missing, plainly and under
 * ASan/UBSan. <target> is an event kind ("call.ended") or a request
 * decoder ("query_request", "authorize_request", "credentials_request"). Each event vector is also fed to every other
 * event decoder. Each file's name ends in the outcome its own decoder
 * must give, which is checked too: ".ok" (accepted), an event's refusal
 * code (".too_deep", the Vox-Error-Reason it would be dead-lettered
 * with) or a request's status code (".400", ".413"). How to add a
 * vector: tests/fuzz/regress/README.md.
 */
#include "core/common.h"

#include <dirent.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../fuzz/fuzz_props.h"
#include "core/buf.h"
#include "vox/subjects.h"

static bool read_all(const char *path, vox_buf *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		vox_buf_append(out, chunk, n);
	bool ok = !ferror(f);
	fclose(f);
	return ok;
}

/* The outcome of a vector through its own decoder, as its name states it. */
static void outcome(char *out, size_t len, const char *target,
		    vox_event_kind kind, const uint8_t *data, size_t size)
{
	vox_status st;
	vox_error err;
	if (strcmp(target, "query_request") == 0) {
		vox_qreq q;
		st = vox_qreq_parse(&q, ~0u, VOX_QCURSOR_CALLS, data, size, &err);
	} else if (strcmp(target, "authorize_request") == 0) {
		vox_authorize_req r;
		st = vox_authorize_parse(&r, data, size, &err);
	} else if (strcmp(target, "credentials_request") == 0) {
		vox_cred_req q;
		st = vox_cred_req_parse(&q, data, size, &err);
		vox_cred_req_release(&q);
	} else {
		vox_event ev;
		vox_error de;
		st = vox_event_decode(&ev, kind, data, size, &de);
		snprintf(out, len, "%s", st == VOX_OK ? "ok" : de.code);
		return;
	}
	if (st == VOX_OK)
		snprintf(out, len, "ok");
	else
		snprintf(out, len, "%d", vox_status_code(st));
}

/* Replay every file of dir; returns how many; counts failures. */
static int replay_dir(const char *dir, const char *target, int *failures)
{
	vox_event_kind kind = VOX_CALL_STARTED;
	bool is_query = strcmp(target, "query_request") == 0;
	bool is_authorize = strcmp(target, "authorize_request") == 0;
	bool is_credentials = strcmp(target, "credentials_request") == 0;
	if (!is_query && !is_authorize && !is_credentials &&
	    !vox_event_kind_from_name(&kind, target, strlen(target))) {
		fprintf(stderr, "  %s: not an event kind nor a request decoder\n",
			target);
		(*failures)++;
		return 0;
	}
	DIR *d = opendir(dir);
	if (!d) {
		(*failures)++;
		return 0;
	}
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
			continue;
		char path[2048];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
			continue;
		vox_buf b;
		vox_buf_init(&b);
		if (!read_all(path, &b)) {
			fprintf(stderr, "  %s: unreadable\n", path);
			(*failures)++;
			vox_buf_release(&b);
			continue;
		}
		const uint8_t *data = (const uint8_t *)b.data;
		bool ok;
		if (is_query) {
			ok = vox_fuzz_query_request(data, b.len);
		} else if (is_authorize) {
			ok = vox_fuzz_authorize_request(data, b.len);
		} else if (is_credentials) {
			ok = vox_fuzz_credentials_request(data, b.len);
		} else {
			ok = vox_fuzz_event(kind, data, b.len);
			for (int k = 0; k < VOX_EVENT_KIND_COUNT && ok; k++)
				ok = vox_fuzz_event((vox_event_kind)k, data, b.len);
		}
		if (!ok) {
			fprintf(stderr, "  FAIL %s/%s: a fuzz property is broken\n",
				target, e->d_name);
			(*failures)++;
		}
		char got[64];
		const char *stated = strrchr(e->d_name, '.');
		outcome(got, sizeof(got), target, kind, data, b.len);
		if (stated == NULL || strcmp(stated + 1, got) != 0) {
			fprintf(stderr, "  FAIL %s/%s: its name states %s, the"
				" decoder's outcome is .%s\n", target, e->d_name,
				stated ? stated : "no outcome", got);
			(*failures)++;
		}
		vox_buf_release(&b);
		n++;
	}
	closedir(d);
	return n;
}

static void test_every_regression_vector_replays_clean(void **state)
{
	(void)state;
	const char *src = getenv("VOX_SOURCE_DIR");
	assert_non_null(src);
	char root[1024];
	snprintf(root, sizeof(root), "%s/tests/fuzz/regress", src);
	DIR *d = opendir(root);
	assert_non_null(d);
	int dirs = 0, files = 0, failures = 0;
	static const char *const requests[] = {"query_request", "authorize_request",
					       "credentials_request"};
	bool seen[VOX_NELEM(requests)] = {false};
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		char dir[1300];
		if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name) >= sizeof(dir))
			continue;
		DIR *probe = opendir(dir);
		if (!probe)
			continue; /* a file (the generator, the README) */
		closedir(probe);
		int n = replay_dir(dir, e->d_name, &failures);
		if (n == 0) {
			fprintf(stderr, "  %s: no vectors\n", e->d_name);
			failures++;
		}
		for (size_t k = 0; k < VOX_NELEM(requests); k++)
			seen[k] |= strcmp(e->d_name, requests[k]) == 0;
		files += n;
		dirs++;
	}
	closedir(d);
	fprintf(stderr, "  %d vectors in %d targets\n", files, dirs);
	assert_int_equal(failures, 0);
	/* every target has its vectors: the 8 event kinds and the three
	 * request decoders */
	assert_int_equal(dirs, VOX_EVENT_KIND_COUNT + (int)VOX_NELEM(requests));
	for (size_t k = 0; k < VOX_NELEM(requests); k++)
		assert_true(seen[k]);
}

/* The accepted side is replayed too: call.started's 32-level nesting in
 * an ignored key is valid, so its round trip is what was checked. */
static void test_a_valid_vector_is_accepted(void **state)
{
	(void)state;
	char path[1024];
	snprintf(path, sizeof(path), "%s/tests/fuzz/regress/call.started/edge-nest-32.ok",
		 getenv("VOX_SOURCE_DIR"));
	vox_buf b;
	vox_buf_init(&b);
	assert_true(read_all(path, &b));
	vox_event ev;
	vox_error err;
	assert_int_equal(vox_event_decode(&ev, VOX_CALL_STARTED,
					  (const uint8_t *)b.data, b.len, &err), VOX_OK);
	assert_true(vox_fuzz_event(VOX_CALL_STARTED, (const uint8_t *)b.data, b.len));
	vox_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_regression_vector_replays_clean),
		cmocka_unit_test(test_a_valid_vector_is_accepted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
