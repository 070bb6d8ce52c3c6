/*
 * voxctl.h - what voxctl's subcommands share: exit codes, the NATS
 * connection (--server or VOX_NATS_URL), input (an argument, -f FILE, or
 * standard input), JSON <-> msgpack conversion and request-reply with
 * ADR-32 errors. One file per subcommand family (cmd_*.c), one table of
 * commands in main.c.
 *
 * Conventions: results on stdout (JSON, pretty on a terminal unless
 * --compact; one line per message for streams), errors on stderr as one
 * line "voxctl: ...". Exit 0 ok, 1 failure reported by a server, 2 usage or
 * invalid input, 3 a server could not be reached.
 */
#ifndef VOX_VOXCTL_H
#define VOX_VOXCTL_H

#include "core/buf.h"
#include "core/common.h"
#include "core/json.h"

#include <getopt.h>
#include <msgpack.h>
#include <nats/nats.h>

enum { EXIT_OK = 0, EXIT_SERVER = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

/* A subcommand: run gets argv from the subcommand's name on (argv[0]). */
typedef struct voxctl_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	const char *usage; /* printed by `voxctl <name> --help` */
} voxctl_cmd;

/* The exit code for a status: 0, 3 for transient trouble, else 1. */
int voxctl_exit_for(vox_status st);

/* ---- options common to every subcommand (main.c parses them) ------------- */

/* The NATS URL: --server URL, else VOX_NATS_URL, else the local default. */
extern const char *voxctl_server;
/* Print JSON on one line even on a terminal (--compact). */
extern bool voxctl_compact;

/* Print "voxctl: <message>" on stderr. */
void voxctl_err(const char *fmt, ...) VOX_PRINTF(1, 2);

/* The integer value v of option opt of subcommand cmd, within [lo, hi];
 * otherwise false, with "<cmd>: <opt>: '<v>' is not an integer from lo
 * to hi" printed. */
bool voxctl_int_opt(long long *out, const char *cmd, const char *opt,
		    const char *v, long long lo, long long hi);

/*
 * Options by getopt_long, the same way in every subcommand: "--opt value"
 * and "--opt=value", options and operands in any order, "--" ends the
 * options. Call voxctl_getopt_reset() before a new scan, then
 * voxctl_getopt until it returns -1; the operands are argv[optind..].
 * An unknown option, a missing value or a value given to a flag is
 * printed in one wording ("voxctl <cmd>: unknown option '--x' (see
 * voxctl help <cmd>)") and returned as VOXCTL_OPT_BAD: exit EXIT_USAGE.
 */
#define VOXCTL_OPT_BAD (-2)
int voxctl_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
		  const struct option *longopts);
void voxctl_getopt_reset(void);
/* "voxctl <cmd>: <what> (see voxctl help <cmd>)" on stderr. */
void voxctl_usage_err(const char *cmd, const char *fmt, ...) VOX_PRINTF(2, 3);

/* ---- NATS ---------------------------------------------------------------- */

/* Connect to voxctl_server (with VOX_NATS_USER/PASSWORD/CREDS, TLS and
 * the inbox prefix like the actors). EXIT_OK, or EXIT_UNREACHABLE /
 * EXIT_USAGE with the error printed. */
int voxctl_connect(natsConnection **nc);

/* The same, quietly: the status, and the error in err. */
vox_status voxctl_connect_status(natsConnection **nc, char *err,
				 size_t errlen) VOX_MUST_CHECK;

/* This user's inbox prefix (the only one the server lets it read). */
bool voxctl_inbox_prefix(char *out, size_t outlen) VOX_MUST_CHECK;

/* A new inbox subject under this user's inbox prefix, for replies
 * collected by hand. */
bool voxctl_new_inbox(char *out, size_t outlen) VOX_MUST_CHECK;

/* voxctl_connect plus a JetStream context. */
int voxctl_jetstream(natsConnection **nc, jsCtx **js);

/*
 * Request subject with body; *reply gets the answer (caller destroys).
 * EXIT_OK for a success reply, EXIT_SERVER for an ADR-32 error reply
 * (*code and text filled; the error is not printed), EXIT_UNREACHABLE
 * when nothing answered in timeout_ms (printed).
 */
int voxctl_request(natsConnection *nc, const char *subject, const void *body,
		   size_t len, int64_t timeout_ms, natsMsg **reply, int *code,
		   char *text, size_t textlen);

/* voxctl_request, then print the reply as JSON on stdout or the error as
 * "voxctl: <subject>: <code> <text>" on stderr. Returns the exit code. */
int voxctl_request_print(natsConnection *nc, const char *subject,
			 const void *body, size_t len, int64_t timeout_ms);

/* ---- input --------------------------------------------------------------- */

/* Read a whole file ("-" is standard input) into out. False with the
 * error printed. */
bool voxctl_read_file(vox_buf *out, const char *path);

/* Parse text as JSON; NULL with "voxctl: <what>: invalid JSON at byte N"
 * printed. */
vox_json *voxctl_parse_json(const char *what, const char *text, size_t len);

/* ---- JSON <-> msgpack ------------------------------------------------------ */

/* Which string values are timestamps: key is the member's name (NULL for
 * an array element). */
typedef bool (*voxctl_time_key_fn)(const char *key, size_t n, void *ctx);

/*
 * Append v as msgpack: null, booleans, integers, other numbers (float64),
 * strings, arrays and objects as they are, except that a string under a
 * key is_time accepts and that parses as RFC 3339 becomes a timestamp
 * (ext -1). A string that does not parse stays a string, so the decoder
 * names the field. is_time may be NULL.
 */
void voxctl_json_to_mp(vox_buf *out, const vox_json *v,
		       voxctl_time_key_fn is_time, void *ctx);

/* The keys that are timestamps in requests (since, until). */
bool voxctl_request_time_key(const char *key, size_t n, void *ctx);

/*
 * Append one msgpack document as JSON: timestamps (ext -1) as RFC 3339
 * text, bin as base64 text, other ext as {"ext": type, "base64": ...},
 * map keys that are not strings as their JSON text. pretty: indented by 2.
 * False (out unchanged in meaning) when data is not exactly one value.
 */
bool voxctl_mp_to_json(vox_buf *out, const void *data, size_t len,
		       bool pretty);

/* Print a msgpack document as JSON on stdout (pretty on a terminal unless
 * --compact), with a newline. False when it is not msgpack. */
bool voxctl_print_mp(const void *data, size_t len);

/* Print JSON text (built compact) like voxctl_print_mp: pretty on a
 * terminal unless --compact. False when it does not parse. */
bool voxctl_print_json(const char *json, size_t len);

/* Progress of a long operation, on stderr and only when it is a terminal
 * (never mixed into a pipe's JSON): "\r<what> [###---] 42% 420/1000", or
 * "\r<what> 420" when the total is not known (0). voxctl_progress_end
 * ends the line. */
bool voxctl_progress_on(void);
void voxctl_progress(const char *what, uint64_t done, uint64_t total);
void voxctl_progress_end(void);

/* ---- the subcommands (cmd_*.c) ------------------------------------------- */

int voxctl_cmd_migrate(int argc, char **argv);     /* cmd_admin.c */
int voxctl_cmd_keys(int argc, char **argv);        /* cmd_admin.c */
int voxctl_cmd_publish(int argc, char **argv);     /* cmd_publish.c */
int voxctl_cmd_tail(int argc, char **argv);        /* cmd_tail.c */
int voxctl_cmd_dlq(int argc, char **argv);         /* cmd_dlq.c */
int voxctl_cmd_request(int argc, char **argv);     /* cmd_request.c */
int voxctl_cmd_wallet(int argc, char **argv);      /* cmd_request.c */
int voxctl_cmd_calls(int argc, char **argv);       /* cmd_request.c */
int voxctl_cmd_call(int argc, char **argv);        /* cmd_request.c */
int voxctl_cmd_hot_leads(int argc, char **argv);   /* cmd_request.c */
int voxctl_cmd_services(int argc, char **argv);    /* cmd_services.c */
int voxctl_cmd_credentials(int argc, char **argv); /* cmd_credentials.c */
int voxctl_cmd_org(int argc, char **argv);         /* cmd_org.c */
int voxctl_cmd_demo(int argc, char **argv);        /* cmd_demo.c */
int voxctl_cmd_streams(int argc, char **argv);     /* cmd_streams.c */

#endif
