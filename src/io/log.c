/*
 * log.c - the single logging sink. Lines are written with one fputs so that
 * concurrent threads do not interleave inside a line.
 */
#include "io/log.h"

#include <time.h>

#include "core/buf.h"

vox_log_level vox_log_threshold = VOX_LOG_INFO;
static char log_actor[64] = "vox";

static const char *level_names[] = {"debug", "info", "warn", "error"};

void vox_log_setup(const char *actor, const char *level)
{
	snprintf(log_actor, sizeof(log_actor), "%s", actor);
	for (size_t i = 0; i < VOX_NELEM(level_names); i++)
		if (level && strcmp(level, level_names[i]) == 0)
			vox_log_threshold = (vox_log_level)i;
}

void vox_log_write(vox_log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
			 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s actor=%s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			 level_names[level], log_actor);
	if (n < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = strlen(line);
	line[len] = '\n';
	line[len + 1] = '\0';
	fputs(line, stderr);
}

void vox_log_redact_dsn(char *out, size_t outlen, const char *dsn)
{
	vox_buf b;
	vox_buf_init(&b);
	const char *p = dsn ? dsn : "";
	const char *uri_at = NULL;
	if (strncmp(p, "postgres://", 11) == 0 ||
	    strncmp(p, "postgresql://", 13) == 0) {
		/* scheme://user:password@host: hide what is between ':' and '@' */
		const char *auth = strstr(p, "://") + 3;
		uri_at = strchr(auth, '@');
		const char *colon = memchr(auth, ':', uri_at ? (size_t)(uri_at - auth) : 0);
		if (uri_at && colon) {
			vox_buf_append(&b, p, (size_t)(colon + 1 - p));
			vox_buf_puts(&b, "***");
			p = uri_at;
		}
		const char *pw = strstr(p, "password=");
		if (pw) {
			vox_buf_append(&b, p, (size_t)(pw + 9 - p));
			vox_buf_puts(&b, "***");
			p = pw + 9 + strcspn(pw + 9, "&");
		}
		vox_buf_puts(&b, p);
	} else {
		const char *pw;
		while ((pw = strstr(p, "password")) != NULL) {
			const char *eq = pw + 8;
			while (*eq == ' ')
				eq++;
			if (*eq != '=') {
				vox_buf_append(&b, p, (size_t)(eq - p));
				p = eq;
				continue;
			}
			eq++;
			while (*eq == ' ')
				eq++;
			vox_buf_append(&b, p, (size_t)(eq - p));
			vox_buf_puts(&b, "***");
			if (*eq == '\'') {
				eq++;
				while (*eq && *eq != '\'')
					eq += (*eq == '\\' && eq[1]) ? 2 : 1;
				if (*eq)
					eq++;
			} else {
				eq += strcspn(eq, " ");
			}
			p = eq;
		}
		vox_buf_puts(&b, p);
	}
	snprintf(out, outlen, "%s", b.data ? b.data : "");
	vox_buf_release(&b);
}
