/*
 * vox/status.h - the one status enum of vox, shared by the actors and by C
 * clients. A status is either transient (try again later: a server is down)
 * or permanent (the input can never succeed: dead-letter it); that split
 * decides what happens to a message.
 */
#ifndef VOX_STATUS_H
#define VOX_STATUS_H

#include <stdbool.h>

/* On a function whose result says whether it worked: ignoring it is a
 * compile error under -Werror. VOX_PRINTF marks a printf-like one. */
#if defined(__GNUC__) || defined(__clang__)
#define VOX_MUST_CHECK __attribute__((warn_unused_result))
#define VOX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define VOX_MUST_CHECK
#define VOX_PRINTF(f, a)
#endif

typedef enum vox_status {
	VOX_OK = 0,
	/* permanent: the input itself is wrong */
	VOX_E_DECODE,       /* bytes are not a well-formed msgpack value */
	VOX_E_INVALID,      /* well-formed, but a field breaks the contract */
	VOX_E_ORG_MISMATCH, /* payload org_id differs from the subject token */
	VOX_E_UNKNOWN_ORG,  /* no such organization */
	VOX_E_CONFLICT,     /* same idempotency key, different fields */
	VOX_E_TOO_LARGE,    /* over a documented size limit */
	VOX_E_NOT_FOUND,    /* the thing asked for does not exist */
	VOX_E_FORBIDDEN,    /* not allowed */
	VOX_E_CONFIG,       /* bad or missing configuration */
	VOX_E_USAGE,        /* bad command line */
	VOX_E_CRYPTO,       /* decryption or authentication failed */
	/* transient: try again later */
	VOX_E_UNAVAILABLE,  /* database or NATS unreachable, connection lost */
	VOX_E_TIMEOUT,      /* no answer in time */
	VOX_E_RETRY,        /* serialization failure, deadlock: run it again */
	/* neither: a bug or the environment */
	VOX_E_INTERNAL,
	VOX_STATUS_COUNT
} vox_status;

/* Short lowercase name of a status, e.g. "invalid". Never NULL. */
const char *vox_status_str(vox_status s);

/* True when the same operation may succeed later without changing input. */
bool vox_status_is_transient(vox_status s);

/* The ADR-32 error code a request-reply answer carries for this status:
 * 400, 403, 404, 409, 413, 500 or 503. */
int vox_status_code(vox_status s);

/*
 * Why an input was refused or an operation failed: the one error of vox.
 * A decoder fills it, and it travels unchanged to a dead letter's headers
 * (Vox-Error, Vox-Error-Reason, Vox-Error-Field) and to a service's error
 * reply (Nats-Service-Error-Code from status, the same Vox-Error-* headers).
 * `code` is a stable identifier (subjects/README.md: "truncated",
 * "out_of_range", ...); `message` names the field and says what is wrong:
 * "duration_seconds: must be 0..86400".
 */
typedef struct vox_error {
	vox_status status;
	const char *code;  /* static string */
	char field[48];    /* "" for errors about the whole input */
	char message[200];
} vox_error;

/* Fill *err (when not NULL) and return st. The message is the field, a
 * colon and the formatted text; just the text when field is NULL or "". */
vox_status vox_error_set(vox_error *err, vox_status st, const char *code,
			 const char *field, const char *fmt, ...)
	VOX_PRINTF(5, 6);

#endif
