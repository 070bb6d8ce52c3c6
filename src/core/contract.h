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

#endif
