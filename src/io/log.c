/*
 * log.c - the single logging sink: one line per event, logfmt by default
 * (VOX_LOG_FORMAT=json for one JSON object a line), with journald's
 * priority prefix when stderr is the journal. Lines are written with one
 * fwrite so that concurrent threads do not interleave inside a line.
 *
 * Call sites write logfmt themselves: `msg="connected" url=%s`. The
 * values they pass are escaped here, as the format string is walked: a
 * %s inside quotes gets its quotes, backslashes and control characters
 * escaped; a %s outside quotes is quoted as well when it needs to be
 * (empty, or holding a space, '=', a quote or a control character). So
 * a PostgreSQL message with quotes and newlines stays one parseable line.
 */
#include "io/log.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

vox_log_level vox_log_threshold = VOX_LOG_INFO;
static char log_actor[64] = "vox";
static bool log_json;
static bool log_journal; /* stderr is journald's stream: "<N>" prefixes */
static FILE *log_sink;   /* NULL: stderr */

static const char *level_names[] = {"debug", "info", "warn", "error"};
static const int journal_priority[] = {7, 6, 4, 3}; /* sd-daemon.h */

/* Whether stderr is the stream journald handed us: JOURNAL_STREAM is
 * "<device>:<inode>" of it (systemd.exec(5)). */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void vox_log_setup(const char *actor, const char *level, const char *format)
{
	snprintf(log_actor, sizeof(log_actor), "%s", actor);
	for (size_t i = 0; i < VOX_NELEM(level_names); i++)
		if (level && strcmp(level, level_names[i]) == 0)
			vox_log_threshold = (vox_log_level)i;
	log_json = format && strcmp(format, "json") == 0;
	log_journal = stderr_is_journal();
}

void vox_log_set_output(FILE *f, bool json, bool journal)
{
	log_sink = f;
	log_json = json;
	log_journal = journal;
}

/* ---- logfmt values ------------------------------------------------------ */

static bool needs_quotes(const char *s, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f)
			return true;
	}
	return false;
}

/* s escaped for the inside of a quoted logfmt value: \" \\ \n \r \t, other
 * control bytes as \xHH; UTF-8 passes as it is. */
static void put_escaped(vox_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': vox_buf_puts(b, "\\\""); break;
		case '\\': vox_buf_puts(b, "\\\\"); break;
		case '\n': vox_buf_puts(b, "\\n"); break;
		case '\r': vox_buf_puts(b, "\\r"); break;
		case '\t': vox_buf_puts(b, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				vox_buf_printf(b, "\\x%02x", c);
			else
				vox_buf_putc(b, (char)c);
		}
	}
}

/* A string argument: escaped inside the format's quotes, quoted (and
 * escaped) outside them when it must be. */
static void put_str(vox_buf *b, const char *s, size_t n, bool in_quotes)
{
	if (in_quotes) {
		put_escaped(b, s, n);
	} else if (needs_quotes(s, n)) {
		vox_buf_putc(b, '"');
		put_escaped(b, s, n);
		vox_buf_putc(b, '"');
	} else {
		vox_buf_append(b, s, n);
	}
}

/* Each conversion is passed to snprintf as its own format: the whole
 * format was checked at the call site (vox_log_write is VOX_PRINTF). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/*
 * vprintf into b, with every %s (and %.*s) passed through put_str. The
 * other conversions are formatted by snprintf one at a time, their
 * argument taken with the type their length modifier names.
 */
static void format_line(vox_buf *b, const char *fmt, va_list ap)
{
	bool in_quotes = false;
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			if (*p == '"')
				in_quotes = !in_quotes;
			vox_buf_putc(b, *p);
			continue;
		}
		/* one conversion: flags, width, precision, length, type */
		const char *start = p++;
		int width = -1, prec = -1;
		bool star_w = false, star_p = false;
		p += strspn(p, "-+ #0");
		if (*p == '*') {
			star_w = true;
			p++;
		} else {
			p += strspn(p, "0123456789");
		}
		if (*p == '.') {
			p++;
			if (*p == '*') {
				star_p = true;
				p++;
			} else {
				p += strspn(p, "0123456789");
			}
		}
		char len[3] = "";
		size_t ln = strspn(p, "hljztL");
		if (ln > 2)
			ln = 2;
		memcpy(len, p, ln);
		p += ln;
		char spec[32];
		size_t sl = (size_t)(p - start) + 1;
		if (sl >= sizeof(spec) || !*p) {
			vox_buf_puts(b, "%?");
			if (!*p)
				break;
			continue;
		}
		memcpy(spec, start, sl);
		spec[sl] = '\0';
		if (star_w)
			width = va_arg(ap, int);
		if (star_p)
			prec = va_arg(ap, int);
		char out[128];
		int n = 0;
#define FMT1(T)                                                                \
	do {                                                                   \
		T v_ = va_arg(ap, T);                                          \
		if (star_w && star_p)                                          \
			n = snprintf(out, sizeof(out), spec, width, prec, v_);  \
		else if (star_w)                                               \
			n = snprintf(out, sizeof(out), spec, width, v_);        \
		else if (star_p)                                               \
			n = snprintf(out, sizeof(out), spec, prec, v_);         \
		else                                                           \
			n = snprintf(out, sizeof(out), spec, v_);               \
	} while (0)
		switch (*p) {
		case '%':
			vox_buf_putc(b, '%');
			continue;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			size_t sn = strlen(s);
			if (star_p && prec >= 0 && (size_t)prec < sn)
				sn = strnlen(s, (size_t)prec);
			put_str(b, s, sn, in_quotes);
			continue;
		}
		case 'c': FMT1(int); break;
		case 'p': FMT1(void *); break;
		case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
			if (len[0] == 'L')
				FMT1(long double);
			else
				FMT1(double);
			break;
		case 'd': case 'i':
			if (!strcmp(len, "ll")) FMT1(long long);
			else if (!strcmp(len, "l")) FMT1(long);
			else if (!strcmp(len, "z")) FMT1(ssize_t);
			else if (!strcmp(len, "j")) FMT1(intmax_t);
			else if (!strcmp(len, "t")) FMT1(ptrdiff_t);
			else FMT1(int);
			break;
		case 'u': case 'x': case 'X': case 'o':
			if (!strcmp(len, "ll")) FMT1(unsigned long long);
			else if (!strcmp(len, "l")) FMT1(unsigned long);
			else if (!strcmp(len, "z")) FMT1(size_t);
			else if (!strcmp(len, "j")) FMT1(uintmax_t);
			else if (!strcmp(len, "t")) FMT1(ptrdiff_t);
			else FMT1(unsigned);
			break;
		default:
			vox_buf_puts(b, "%?");
			continue;
		}
#undef FMT1
		if (n > 0)
			vox_buf_append(b, out, (size_t)n < sizeof(out) ? (size_t)n
								     : sizeof(out) - 1);
	}
}

#pragma GCC diagnostic pop

/* ---- JSON lines ----------------------------------------------------------- */

/* Rewrite one logfmt line (as format_line writes them) as a JSON object:
 * quoted values unescaped and re-escaped as JSON strings, bare integers
 * as numbers, other bare values as strings. */
static void logfmt_to_json(vox_buf *out, const char *s, size_t n)
{
	size_t i = 0;
	bool first = true;
	vox_buf v;
	vox_buf_init(&v);
	vox_buf_putc(out, '{');
	while (i < n) {
		while (i < n && s[i] == ' ')
			i++;
		size_t k = i;
		while (i < n && s[i] != '=' && s[i] != ' ')
			i++;
		if (i == k)
			break;
		size_t klen = i - k;
		v.len = 0;
		bool quoted = false, number = false;
		if (i < n && s[i] == '=') {
			i++;
			if (i < n && s[i] == '"') {
				quoted = true;
				for (i++; i < n && s[i] != '"'; i++) {
					if (s[i] != '\\' || i + 1 >= n) {
						vox_buf_putc(&v, s[i]);
						continue;
					}
					char e = s[++i];
					if (e == 'n') vox_buf_putc(&v, '\n');
					else if (e == 'r') vox_buf_putc(&v, '\r');
					else if (e == 't') vox_buf_putc(&v, '\t');
					else if (e == 'x' && i + 2 < n) {
						char hex[3] = {s[i + 1], s[i + 2], 0};
						vox_buf_putc(&v, (char)strtol(hex, NULL, 16));
						i += 2;
					} else vox_buf_putc(&v, e);
				}
				i++; /* the closing quote */
			} else {
				size_t vs = i;
				while (i < n && s[i] != ' ')
					i++;
				vox_buf_append(&v, s + vs, i - vs);
			}
		}
		if (!quoted && v.len > 0 && v.len <= 20) {
			size_t d = v.data[0] == '-' ? 1 : 0;
			number = d < v.len && strspn(v.data + d, "0123456789") == v.len - d;
		}
		if (!first)
			vox_buf_putc(out, ',');
		first = false;
		vox_buf_json_str(out, s + k, klen);
		vox_buf_putc(out, ':');
		if (number)
			vox_buf_append(out, v.data, v.len);
		else
			vox_buf_json_str(out, v.data ? v.data : "", v.len);
	}
	vox_buf_putc(out, '}');
	vox_buf_release(&v);
}

void vox_log_write(vox_log_level level, const char *fmt, ...)
{
	vox_buf line, out;
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	vox_buf_init(&line);
	vox_buf_init(&out);
	vox_buf_printf(&line,
		       "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s actor=",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		       tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		       level_names[level]);
	put_str(&line, log_actor, strlen(log_actor), false);
	vox_buf_putc(&line, ' ');
	va_list ap;
	va_start(ap, fmt);
	format_line(&line, fmt, ap);
	va_end(ap);
	if (log_journal)
		vox_buf_printf(&out, "<%d>", journal_priority[level]);
	if (log_json)
		logfmt_to_json(&out, line.data, line.len);
	else
		vox_buf_append(&out, line.data, line.len);
	vox_buf_putc(&out, '\n');
	FILE *f = log_sink ? log_sink : stderr;
	fwrite(out.data, 1, out.len, f);
	fflush(f);
	vox_buf_release(&line);
	vox_buf_release(&out);
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
