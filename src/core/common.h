/*
 * common.h - first include of every vox source file: the standard headers
 * the project relies on, a few attribute macros, and banned.h last so that
 * the unsafe libc calls it names cannot be used.
 */
#ifndef VOX_COMMON_H
#define VOX_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox/status.h"

#define VOX_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define VOX_UNUSED(x) ((void)(x))

/* Out of memory aborts: a daemon cannot do better (see core/alloc.c). */
void *vox_malloc(size_t n);
void *vox_calloc(size_t count, size_t n);
void *vox_realloc(void *p, size_t n);
char *vox_strndup(const char *s, size_t n);

#include "core/banned.h"

#endif
