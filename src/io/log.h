/*
 * log.h - one line per event on stderr, level-filtered before any
 * formatting happens: logfmt (key=value, values escaped), or JSON with
 * VOX_LOG_FORMAT=json; with journald's priority prefix when stderr is the
 * journal. Messages are lowercase; never pass a secret or a DSN with a
 * password (use vox_log_redact_dsn).
 */
#ifndef VOX_LOG_H
#define VOX_LOG_H

#include "core/common.h"

typedef enum vox_log_level {
	VOX_LOG_DEBUG = 0,
	VOX_LOG_INFO,
	VOX_LOG_WARN,
	VOX_LOG_ERROR,
} vox_log_level;

/* The process-wide threshold and name, set once by main() before threads
 * start; read-only afterwards. */
extern vox_log_level vox_log_threshold;

/* Name, threshold and format ("logfmt", the default, or "json"; NULL:
 * logfmt); the journal's prefixes when JOURNAL_STREAM names stderr. */
void vox_log_setup(const char *actor, const char *level, const char *format);

/* Write to f (NULL: stderr) in the given format: for tests. */
void vox_log_set_output(FILE *f, bool json, bool journal);

void vox_log_write(vox_log_level level, const char *fmt, ...) VOX_PRINTF(2, 3);

/* fmt is the rest of the line after ts/level/actor, e.g.
 * vox_log(VOX_LOG_INFO, "msg=\"connected\" url=%s", url). A %s inside
 * the format's quotes is escaped, one outside them quoted when needed:
 * pass values as they are. */
#define vox_log(level, ...)                                                  \
	do {                                                                 \
		if ((level) >= vox_log_threshold)                            \
			vox_log_write((level), __VA_ARGS__);                 \
	} while (0)
#define vox_debug(...) vox_log(VOX_LOG_DEBUG, __VA_ARGS__)
#define vox_info(...) vox_log(VOX_LOG_INFO, __VA_ARGS__)
#define vox_warn(...) vox_log(VOX_LOG_WARN, __VA_ARGS__)
#define vox_error(...) vox_log(VOX_LOG_ERROR, __VA_ARGS__)

/* Copy a libpq DSN (key=value or URI form) into out with any password
 * replaced by "***". Always NUL-terminates. */
void vox_log_redact_dsn(char *out, size_t outlen, const char *dsn);

#endif
