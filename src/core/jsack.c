/*
 * jsack.c - parsing the ack subject of a JetStream delivery (see jsack.h).
 */
#include "core/common.h"

#include "core/buf.h"
#include "core/jsack.h"

#define MAX_TOKENS 16

bool vox_js_ack_parse(vox_js_ack *out, const char *reply)
{
	const char *tok[MAX_TOKENS];
	size_t len[MAX_TOKENS], n = 0;
	memset(out, 0, sizeof(*out));
	if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
		return false;
	for (const char *p = reply;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (n == MAX_TOKENS || l == 0)
			return false;
		tok[n] = p;
		len[n++] = l;
		if (!dot)
			break;
		p = dot + 1;
	}
	/* 9 tokens: no domain; 11 or more: domain and account hash first */
	size_t at;
	if (n == 9)
		at = 4;
	else if (n >= 11)
		at = 6;
	else
		return false;
	uint64_t f[5], ts;
	for (size_t i = 0; i < 5; i++)
		if (!vox_parse_decimal(&f[i], tok[at + i], len[at + i]))
			return false;
	ts = f[3];
	if (ts > (uint64_t)INT64_MAX)
		return false;
	out->delivered = f[0];
	out->stream_seq = f[1];
	out->consumer_seq = f[2];
	out->timestamp_ns = (int64_t)ts;
	out->pending = f[4];
	return true;
}
