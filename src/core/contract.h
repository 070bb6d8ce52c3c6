/*
 * contract.h - the contract as data. The field tables the decoders run
 * (events and alerts in event.c, the requests of query.*, credentials.*
 * and billing.authorize) rendered as JSON Schema (draft 2020-12) of the
 * JSON form clients see: the form voxctl prints and the kits decode to,
 * where a msgpack timestamp is an RFC 3339 string and bin is base64.
 * vox-contract (src/tools/contract.c) writes them, with the AsyncAPI
 * document of every subject, to subjects/schema/.
 */
#ifndef VOX_CORE_CONTRACT_H
#define VOX_CORE_CONTRACT_H

#include "core/buf.h"
#include "core/schema.h"
#include "vox/event.h"

/* The schema each decoder runs (borrowed, static). */
const vox_schema *vox_event_schema(vox_event_kind kind);
const vox_schema *vox_qreq_schema(void);
const vox_schema *vox_cred_req_schema(void);
const vox_schema *vox_authorize_schema(void);

/*
 * Append the JSON Schema of s, for the fields whose bit is in only
 * (VOX_SCHEMA_ALL: every one): "type": "object", each field's type,
 * bounds, pattern or enum, the required ones, and additionalProperties
 * true (unknown keys are ignored: subjects/compatibility.md). id is the
 * $id (a file name; NULL: neither $id nor $schema, for a schema inside
 * another document), title and description say what it is. extra, when
 * not NULL, is JSON members ("k": v, ...) appended to the object (a rule
 * across fields). Keys in table order; the output is stable.
 */
void vox_contract_json_schema(vox_buf *out, const vox_schema *s, uint32_t only,
			      const char *id, const char *title,
			      const char *description, const char *extra);

/* The schema of one field, as a JSON object (the value of its property). */
void vox_contract_field(vox_buf *out, const vox_field *f);


/* ---- replies ---------------------------------------------------------- */

/*
 * The replies have no decoder of their own (vox writes them), so their
 * shape is this description, kept beside the SELECT lists and the packers
 * that write them (actors/query/endpoints.c, billing's and vault's
 * endpoints) and checked against live replies by the kits' tests.
 */
typedef enum vox_rtype {
	VOX_R_INT, VOX_R_NUMBER, VOX_R_BOOL, VOX_R_STRING, VOX_R_UUID, VOX_R_TS,
	VOX_R_BYTES, VOX_R_ROWS, /* an array of rows (the field's rows) */
} vox_rtype;

typedef struct vox_rfield vox_rfield;
typedef struct vox_rshape {
	const vox_rfield *fields;
	size_t nfields;
} vox_rshape;

struct vox_rfield {
	const char *key;
	vox_rtype type;
	bool nullable; /* nil (JSON null) is a value it may have */
	bool optional; /* the key may be absent (a row leaves NULLs out) */
	const vox_rshape *rows; /* VOX_R_ROWS: each row's shape */
};

/* The reply shape of a request subject ("query.wallet", ...), or NULL. */
const vox_rshape *vox_reply_shape(const char *subject);

/* Append the JSON Schema of a reply shape (id NULL: embedded). */
void vox_contract_reply_schema(vox_buf *out, const vox_rshape *s, const char *id,
			       const char *title, const char *description);

#endif
