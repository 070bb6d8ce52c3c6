/*
 * alloc.c - allocation wrappers that abort on out-of-memory. A daemon that
 * cannot allocate cannot make progress; aborting keeps every signature
 * honest instead of threading ENOMEM through code that cannot handle it.
 */
#include "core/common.h"

static void oom(size_t n)
{
	fprintf(stderr, "level=fatal msg=\"out of memory\" bytes=%zu\n", n);
	abort();
}

void *vox_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *vox_calloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);
	if (!p)
		oom(count * n);
	return p;
}

void *vox_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *vox_strndup(const char *s, size_t n)
{
	char *d = vox_malloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}
