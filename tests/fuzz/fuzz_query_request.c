/*
 * libFuzzer target for vox-query's request decoder, with every key
 * allowed and each cursor kind in turn. Besides "no crash, no out-of-bounds
 * read" (ASan/UBSan): a refusal always says why, and an accepted request
 * keeps its limits (limit 1..100, since before until, its cursor
 * re-encodes to a cursor that decodes to the same position).
 */
#include "core/common.h"

#include "actors/query/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const vox_qcursor_kind kinds[] = {VOX_QCURSOR_CALLS,
						 VOX_QCURSOR_TRANSACTIONS};
	for (size_t k = 0; k < VOX_NELEM(kinds); k++) {
		vox_qreq q;
		char err[200] = "";
		vox_status st = vox_qreq_parse(&q, ~0u, kinds[k], data, size, err,
					       sizeof(err));
		if (st != VOX_OK) {
			if ((st != VOX_E_INVALID && st != VOX_E_TOO_LARGE) || !err[0])
				abort();
			continue;
		}
		if (q.limit < 1 || q.limit > VOX_QUERY_MAX_LIMIT)
			abort();
		if ((q.has & VOX_QK_SINCE) && (q.has & VOX_QK_UNTIL) &&
		    q.since_us >= q.until_us)
			abort();
		if (q.has & VOX_QK_BEFORE) {
			char text[VOX_QCURSOR_MAX];
			vox_qcursor back;
			vox_qcursor_encode(kinds[k], &q.before, text);
			if (!vox_qcursor_decode(kinds[k], text, strlen(text), &back) ||
			    back.key != q.before.key ||
			    memcmp(back.id, q.before.id, sizeof(back.id)) != 0)
				abort();
		}
	}
	return 0;
}
