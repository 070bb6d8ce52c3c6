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
 * compile error under -Werror. */
#if defined(__GNUC__) || defined(__clang__)
#define VOX_MUST_CHECK __attribute__((warn_unused_result))
#else
#define VOX_MUST_CHECK
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

#endif
