/*
 * query_request.h - vox-query's requests and cursors, pure: a request body
 * decoded and limited (every endpoint the same way), and the opaque
 * cursors of its lists. The endpoints are src/actors/query/.
 */
#ifndef VOX_QUERY_REQUEST_H
#define VOX_QUERY_REQUEST_H

#include "core/common.h"

#include "vox/event.h"

/* The keys a request may carry; each endpoint reads only its own. */
enum {
	VOX_QK_LIMIT = 1u << 0,
	VOX_QK_BEFORE = 1u << 1,
	VOX_QK_TYPE = 1u << 2,
	VOX_QK_STATUS = 1u << 3,
	VOX_QK_DIRECTION = 1u << 4,
	VOX_QK_SINCE = 1u << 5,
	VOX_QK_UNTIL = 1u << 6,
	VOX_QK_CALL_ID = 1u << 7,
	VOX_QK_CONTACT_ID = 1u << 8,
	VOX_QK_PHONE = 1u << 9,
};

#define VOX_QUERY_MAX_REQUEST 4096
#define VOX_QUERY_DEFAULT_LIMIT 20
#define VOX_QUERY_MAX_LIMIT 100

/* A position in a list: the order key of the last row of a page. */
typedef enum vox_qcursor_kind {
	VOX_QCURSOR_TRANSACTIONS = 'T', /* key = ledger seq */
	VOX_QCURSOR_CALLS = 'C',        /* key = created_at (unix us), id */
} vox_qcursor_kind;

typedef struct vox_qcursor {
	int64_t key;
	uint8_t id[16]; /* calls only */
} vox_qcursor;

/* The longest cursor text, with its NUL. */
#define VOX_QCURSOR_MAX 48

/* Encode c as the opaque text clients send back: base64url of a version
 * byte, the kind, the key and (for calls) the id. */
void vox_qcursor_encode(vox_qcursor_kind kind, const vox_qcursor *c,
			char out[VOX_QCURSOR_MAX]);

/* Decode a cursor of the given kind; false for anything else. */
bool vox_qcursor_decode(vox_qcursor *out, vox_qcursor_kind kind, const char *s,
			size_t n);

typedef struct vox_qreq {
	unsigned has; /* VOX_QK_* present (not nil) */
	int limit;    /* VOX_QUERY_DEFAULT_LIMIT when absent */
	vox_qcursor before;
	char type[12];      /* topup | deduction | refund */
	char status[12];    /* pending | in_progress | completed | failed */
	char direction[12]; /* inbound | outbound */
	int64_t since_us;   /* unix microseconds */
	int64_t until_us;
	vox_uuid call_id;
	vox_uuid contact_id;
	char phone[17];
} vox_qreq;

/*
 * Decode a request body by the rules of every request (core/schema.h): a
 * msgpack map (an empty body counts as {}) whose keys in `allowed` are
 * checked and whose other keys are skipped. A cursor in `before` must be
 * of `kind`. *q is always initialised. VOX_E_TOO_LARGE over
 * VOX_QUERY_MAX_REQUEST bytes, VOX_E_DECODE or VOX_E_INVALID otherwise;
 * err names the field ("limit: must be 1..100").
 */
vox_status vox_qreq_parse(vox_qreq *q, unsigned allowed, vox_qcursor_kind kind,
			  const void *data, size_t len,
			  vox_error *err) VOX_MUST_CHECK;

/* The query.* endpoints and the request keys each reads (the others are
 * ignored like unknown keys): the one list vox-query and the contract
 * generator (vox-contract) share. */
enum { VOX_Q_WALLET, VOX_Q_TRANSACTIONS, VOX_Q_CALLS, VOX_Q_CALL,
       VOX_Q_CONTACT, VOX_Q_HOT_LEADS, VOX_Q_HOLDS, VOX_Q_COUNT };
typedef struct vox_query_def {
	const char *name; /* query.<name>.<org> */
	unsigned keys;    /* VOX_QK_* */
} vox_query_def;
extern const vox_query_def vox_query_defs[VOX_Q_COUNT];

#endif
