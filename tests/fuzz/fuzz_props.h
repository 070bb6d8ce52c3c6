/*
 * fuzz_props.h - the properties the fuzz targets check on every input,
 * shared with the unit test that replays tests/fuzz/regress/ without
 * clang (tests/unit/test_fuzz_regress.c). Each returns false when a
 * property is broken; the fuzz targets abort() then, the unit test fails.
 * Memory errors are caught by the sanitizers of the build that runs them.
 */
#ifndef VOX_FUZZ_PROPS_H
#define VOX_FUZZ_PROPS_H

#include "core/common.h"

#include "core/query_request.h"
#include "core/authorize.h"
#include "core/credentials_request.h"
#include "core/codec.h"
#include "vox/event.h"

/* A refusal always says why; an accepted event re-encodes, and the
 * re-encoding decodes to the same value. */
static inline bool vox_fuzz_event(vox_event_kind kind, const uint8_t *data,
				  size_t size)
{
	vox_event ev, back;
	vox_error err;
	if (vox_event_decode(&ev, kind, data, size, &err) != VOX_OK)
		return err.code != NULL && err.message[0] != '\0';
	unsigned char *buf = NULL;
	size_t len = 0;
	if (vox_event_encode(&buf, &len, &ev, &err) != VOX_OK)
		return false;
	bool ok = vox_event_decode(&back, ev.kind, buf, len, &err) == VOX_OK;
	if (ok) {
		char *a = vox_event_to_json(&ev);
		char *b = vox_event_to_json(&back);
		ok = strcmp(a, b) == 0;
		free(a);
		free(b);
	}
	free(buf);
	return ok;
}

/* A request refused as bad input: 400 or 413, with a stable reason and a
 * message that says why. */
static inline bool vox_fuzz_refusal(vox_status st, const vox_error *err)
{
	int code = vox_status_code(st);
	return (code == 400 || code == 413) && err->status == st &&
	       err->code != NULL && err->code[0] != '\0' &&
	       err->message[0] != '\0';
}

/* vox-query's request decoder, with every key allowed and each cursor
 * kind in turn: a refusal always says why, and an accepted request keeps
 * its limits (limit 1..100, since before until, its cursor re-encodes to
 * a cursor that decodes to the same position). */
static inline bool vox_fuzz_query_request(const uint8_t *data, size_t size)
{
	static const vox_qcursor_kind kinds[] = {VOX_QCURSOR_CALLS,
						 VOX_QCURSOR_TRANSACTIONS};
	for (size_t k = 0; k < VOX_NELEM(kinds); k++) {
		vox_qreq q;
		vox_error err;
		vox_status st = vox_qreq_parse(&q, ~0u, kinds[k], data, size, &err);
		if (st != VOX_OK) {
			if (!vox_fuzz_refusal(st, &err))
				return false;
			continue;
		}
		if (q.limit < 1 || q.limit > VOX_QUERY_MAX_LIMIT)
			return false;
		if ((q.has & VOX_QK_SINCE) && (q.has & VOX_QK_UNTIL) &&
		    q.since_us >= q.until_us)
			return false;
		if (q.has & VOX_QK_BEFORE) {
			char text[VOX_QCURSOR_MAX];
			vox_qcursor back;
			vox_qcursor_encode(kinds[k], &q.before, text);
			if (!vox_qcursor_decode(&back, kinds[k], text, strlen(text)) ||
			    back.key != q.before.key ||
			    memcmp(back.id, q.before.id, sizeof(back.id)) != 0)
				return false;
		}
	}
	return true;
}

/* billing.authorize's request decoder: 413 exactly when over the limit,
 * any other refusal a 400 that says why; an accepted request's call_id is
 * absent or a canonical (lowercase) UUID. */
static inline bool vox_fuzz_authorize_request(const uint8_t *data, size_t size)
{
	vox_authorize_req r;
	vox_error err;
	vox_status st = vox_authorize_parse(&r, data, size, &err);
	if ((st == VOX_E_TOO_LARGE) != (size > VOX_AUTHORIZE_MAX_REQUEST))
		return false;
	if (st != VOX_OK)
		return vox_fuzz_refusal(st, &err);
	if (r.call_id.s[0] == '\0')
		return true;
	vox_uuid back;
	if (strlen(r.call_id.s) != 36 || !vox_uuid_parse(&back, r.call_id.s, 36))
		return false;
	return strcmp(back.s, r.call_id.s) == 0;
}

/* credentials.*'s request decoder: 413 over the size limit, any refusal
 * a 400 or 413 that says why; an accepted request holds only valid names
 * (a provider vox knows, type default/inbound/outbound), a 32-byte
 * reply_key, a config inside the input, and metadata that is empty or one
 * JSON object within its limit. */
static inline bool vox_fuzz_credentials_request(const uint8_t *data, size_t size)
{
	vox_cred_req q;
	vox_error err;
	vox_status st = vox_cred_req_parse(&q, data, size, &err);
	bool ok = true;
	if (size > VOX_CRED_MAX_REQUEST && st != VOX_E_TOO_LARGE)
		ok = false;
	else if (st != VOX_OK)
		ok = vox_fuzz_refusal(st, &err);
	else {
		if (q.has_provider && !vox_vault_provider_ok(q.provider, strlen(q.provider)))
			ok = false;
		if (!vox_vault_type_ok(q.type, strlen(q.type)))
			ok = false;
		if (q.has_config && (q.config < data || q.config + q.config_len > data + size))
			ok = false;
		if (q.has_reply_key && (q.reply_key < data || q.reply_key + 32 > data + size))
			ok = false;
		if (q.metadata.len > 0 &&
		    (q.metadata.len < 2 || q.metadata.len > VOX_CRED_MAX_METADATA + 1 ||
		     q.metadata.data[0] != '{' || q.metadata.data[q.metadata.len - 1] != '}'))
			ok = false;
	}
	vox_cred_req_release(&q);
	return ok;
}

#endif
