/*
 * contract.c - JSON Schema from the field tables (see contract.h).
 */
#include "core/contract.h"

#include <inttypes.h>
#include <string.h>

#define ID_MAX 128 /* VOX_F_EVENT_ID */
#define OUTSIDE_ID_MAX 255

static void str(vox_buf *out, const char *s)
{
	vox_buf_json_str(out, s, strlen(s));
}

void vox_contract_field(vox_buf *out, const vox_field *f)
{
	switch (f->kind) {
	case VOX_F_EVENT_ID:
		vox_buf_printf(out, "{\"type\":\"string\",\"minLength\":1,\"maxLength\":%d,"
			       "\"pattern\":\"^[ -~]+$\",\"description\":\"1..%d printable"
			       " ASCII characters\"}", ID_MAX, ID_MAX);
		break;
	case VOX_F_ID:
		vox_buf_printf(out, "{\"type\":\"string\",\"minLength\":1,\"maxLength\":%d,"
			       "\"pattern\":\"^[!-~]+$\",\"description\":\"an outside"
			       " system's id: 1..%d printable ASCII characters, no"
			       " spaces\"}", OUTSIDE_ID_MAX, OUTSIDE_ID_MAX);
		break;
	case VOX_F_TEXT:
		vox_buf_printf(out, "{\"type\":\"string\",\"maxLength\":%" PRId64 ","
			       "\"description\":\"UTF-8 without NUL, at most %" PRId64
			       " bytes\"}", f->max, f->max);
		break;
	case VOX_F_UUID:
		vox_buf_puts(out, "{\"type\":\"string\",\"format\":\"uuid\",\"pattern\":"
			     "\"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
			     "[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$\"}");
		break;
	case VOX_F_E164:
		vox_buf_puts(out, "{\"type\":\"string\",\"pattern\":\"^\\\\+[1-9][0-9]{7,14}$\","
			     "\"description\":\"E.164\"}");
		break;
	case VOX_F_TS:
		vox_buf_puts(out, "{\"type\":\"string\",\"format\":\"date-time\","
			     "\"description\":\"on the wire a msgpack timestamp (ext -1)"
			     " or integer milliseconds since 1970, between 2000-01-01"
			     " and 2100-01-01\"}");
		break;
	case VOX_F_INT:
		vox_buf_printf(out, "{\"type\":\"integer\",\"minimum\":%" PRId64
			       ",\"maximum\":%" PRId64 "}", f->min, f->max);
		break;
	case VOX_F_FLOAT:
		vox_buf_printf(out, "{\"type\":\"number\",\"minimum\":%" PRId64
			       ",\"maximum\":%" PRId64 "}", f->min, f->max);
		break;
	case VOX_F_ENUM:
		vox_buf_puts(out, "{\"type\":\"string\",\"enum\":[");
		for (size_t i = 0; f->choices && f->choices[i]; i++) {
			if (i)
				vox_buf_putc(out, ',');
			str(out, f->choices[i]);
		}
		vox_buf_puts(out, "]}");
		break;
	case VOX_F_BYTES:
		vox_buf_printf(out, "{\"type\":\"string\",\"description\":\"a msgpack"
			       " str (text as is) or bin (base64 in JSON) of at most %"
			       PRId64 " bytes\"}", f->max);
		break;
	case VOX_F_BIN:
		vox_buf_printf(out, "{\"type\":\"string\",\"contentEncoding\":\"base64\","
			       "\"description\":\"a msgpack bin of %" PRId64 "..%" PRId64
			       " bytes, base64 in JSON\"}", f->min, f->max);
		break;
	case VOX_F_CUSTOM:
		/* read by its own function: described, not constrained */
		if (strcmp(f->key, "before") == 0)
			vox_buf_puts(out, "{\"type\":\"string\",\"description\":\"the"
				     " next cursor of the page before\"}");
		else if (strcmp(f->key, "metadata") == 0)
			vox_buf_puts(out, "{\"type\":\"object\",\"description\":\"a map"
				     " of text, kept as JSON\"}");
		else
			vox_buf_puts(out, "{}");
		break;
	}
}

void vox_contract_json_schema(vox_buf *out, const vox_schema *s, uint32_t only,
			      const char *id, const char *title,
			      const char *description, const char *extra)
{
	vox_buf_putc(out, '{');
	if (id) {
		vox_buf_puts(out, "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
			     "\"$id\":");
		str(out, id);
		vox_buf_putc(out, ',');
	}
	vox_buf_puts(out, "\"title\":");
	str(out, title);
	vox_buf_puts(out, ",\"description\":");
	str(out, description);
	vox_buf_puts(out, ",\"type\":\"object\",\"properties\":{");
	bool first = true;
	for (size_t i = 0; i < s->nfields; i++) {
		if (!(only & (1u << i)))
			continue;
		if (!first)
			vox_buf_putc(out, ',');
		first = false;
		str(out, s->fields[i].key);
		vox_buf_putc(out, ':');
		vox_contract_field(out, &s->fields[i]);
	}
	vox_buf_puts(out, "},\"required\":[");
	first = true;
	for (size_t i = 0; i < s->nfields; i++) {
		if (!(only & (1u << i)) || !s->fields[i].required)
			continue;
		if (!first)
			vox_buf_putc(out, ',');
		first = false;
		str(out, s->fields[i].key);
	}
	vox_buf_puts(out, "],\"additionalProperties\":true");
	if (extra && *extra) {
		vox_buf_putc(out, ',');
		vox_buf_puts(out, extra);
	}
	vox_buf_putc(out, '}');
}
