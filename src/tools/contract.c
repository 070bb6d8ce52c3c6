/*
 * vox-contract DIR - writes the contract as data into DIR (committed as
 * subjects/schema/, checked fresh by a test):
 *
 *   <kind>.json               JSON Schema of each event and alert
 *   <subject>.request.json    JSON Schema of each request body
 *   <subject>.reply.json      ... and of its reply (core/contract.c's shapes)
 *   asyncapi.json             AsyncAPI 3.0 of every subject, from vox's
 *                             side: the events it receives, the alerts and
 *                             dead letters it sends, the requests it answers
 *
 * Everything comes from the field tables the decoders run and, for the
 * replies vox writes, the shapes beside them (core/contract.h); the prose stays in the documents of subjects/, which each schema
 * links to. Output is stable (table order) and pretty-printed.
 */
#include "core/common.h"
#include "core/contract.h"
#include "core/query_request.h"
#include "vox/subjects.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define BASE_ID "https://vox.example/schema/"

/* lead.scored needs one of two optional fields. */
static const char *extra_rule(vox_event_kind k)
{
	return k == VOX_LEAD_SCORED
		       ? "\"anyOf\":[{\"required\":[\"contact_id\"]},"
			 "{\"required\":[\"phone\"]}]"
		       : NULL;
}

/* Pretty-print compact JSON text (indent 2), strings untouched. */
static void pretty(FILE *f, const char *s)
{
	int depth = 0;
	bool in_str = false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (in_str) {
			fputc(c, f);
			if (c == '\\' && p[1])
				fputc(*++p, f);
			else if (c == '"')
				in_str = false;
			continue;
		}
		switch (c) {
		case '"':
			in_str = true;
			fputc(c, f);
			break;
		case '{':
		case '[':
			if ((p[1] == '}' || p[1] == ']')) {
				fputc(c, f);
				fputc(*++p, f);
				break;
			}
			fputc(c, f);
			fprintf(f, "\n%*s", 2 * ++depth, "");
			break;
		case '}':
		case ']':
			fprintf(f, "\n%*s%c", 2 * --depth, "", c);
			break;
		case ',':
			fprintf(f, ",\n%*s", 2 * depth, "");
			break;
		case ':':
			fputs(": ", f);
			break;
		default:
			fputc(c, f);
		}
	}
	fputc('\n', f);
}

static int write_file(const char *dir, const char *name, const vox_buf *json)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "vox-contract: %s: %s\n", path, strerror(errno));
		return 1;
	}
	pretty(f, json->data);
	if (fclose(f) != 0) {
		fprintf(stderr, "vox-contract: %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("%s\n", path);
	return 0;
}

/* The query endpoint of a request subject, or NULL. */
static const vox_query_def *query_def(const char *subject)
{
	for (size_t i = 0; i < VOX_Q_COUNT; i++)
		if (strncmp(subject, "query.", 6) == 0 &&
		    strcmp(subject + 6, vox_query_defs[i].name) == 0)
			return &vox_query_defs[i];
	return NULL;
}

/* A request subject's schema and the keys it reads. */
static const vox_schema *request_schema(const char *subject, uint32_t *only)
{
	const vox_query_def *q = query_def(subject);
	*only = VOX_SCHEMA_ALL;
	if (q) {
		*only = q->keys;
		return vox_qreq_schema();
	}
	if (strcmp(subject, "billing.authorize") == 0)
		return vox_authorize_schema();
	return vox_cred_req_schema();
}

/* The document of a subject in subjects/ (for the descriptions). */
static const char *doc_of(const char *subject)
{
	if (strncmp(subject, "query.", 6) == 0)
		return "query.md";
	if (strncmp(subject, "credentials.", 12) == 0)
		return "credentials.md";
	if (strcmp(subject, "billing.authorize") == 0)
		return "billing.authorize.md";
	return NULL;
}

/* The title and description of a request's or a reply's schema, the
 * same in its file and in the AsyncAPI document. */
static void names(char *title, size_t tlen, char *desc, size_t dlen,
		  const char *subj, bool reply)
{
	snprintf(title, tlen, "%s %s", subj, reply ? "reply" : "request");
	snprintf(desc, dlen, "%s %s.<org_id>: subjects/%s (the JSON form of its"
		 " msgpack payload)", reply ? "the answer to" : "the body of", subj,
		 doc_of(subj));
}

static const char org_param[] =
	"\"parameters\":{\"org_id\":{\"description\":\"the organization's UUID,"
	" the same as the payload's org_id\"}}";

static const char event_headers[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"Nats-Msg-Id\":{\"type\":\"string\",\"description\":\"the event_id"
	" (alert_id for an alert): JetStream's duplicate filter\"},"
	"\"Vox-Schema\":{\"type\":\"string\",\"enum\":[\"" VOX_SCHEMA_VERSION "\"],"
	"\"description\":\"the payload version; absent means 1, another is"
	" dead-lettered as unknown_schema\"}}}";

static const char error_headers[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"Nats-Service-Error\":{\"type\":\"string\"},"
	"\"Nats-Service-Error-Code\":{\"type\":\"string\",\"pattern\":\"^[0-9]{3}$\"},"
	"\"Vox-Error-Reason\":{\"type\":\"string\",\"description\":\"the stable"
	" reason (subjects/README.md, Errors)\"},"
	"\"Vox-Error-Field\":{\"type\":\"string\"}},"
	"\"required\":[\"Nats-Service-Error\",\"Nats-Service-Error-Code\"]}";

static const char dlq_headers[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"Vox-Error\":{\"type\":\"string\"},"
	"\"Vox-Error-Code\":{\"type\":\"string\",\"pattern\":\"^[0-9]{3}$\"},"
	"\"Vox-Error-Reason\":{\"type\":\"string\"},"
	"\"Vox-Error-Field\":{\"type\":\"string\"},"
	"\"Vox-Stream-Seq\":{\"type\":\"string\"},"
	"\"Vox-Actor\":{\"type\":\"string\"},"
	"\"Vox-Original-Msg-Id\":{\"type\":\"string\"},"
	"\"Vox-Schema\":{\"type\":\"string\"}},"
	"\"required\":[\"Vox-Error\",\"Vox-Error-Code\",\"Vox-Error-Reason\","
	"\"Vox-Stream-Seq\",\"Vox-Actor\"]}";

/* The AsyncAPI 3.0 document. */
static void asyncapi(vox_buf *b)
{
	vox_buf_puts(b, "{\"asyncapi\":\"3.0.0\",\"info\":{\"title\":\"vox\","
		     "\"version\":\"" VOX_VERSION "\",\"description\":\"The subjects"
		     " of vox on NATS JetStream, from vox's side: the events it"
		     " receives, the alerts and dead letters it sends, the requests"
		     " it answers. Payloads are msgpack maps; their schemas here are"
		     " of the JSON form (timestamps as RFC 3339 text, bin as base64)."
		     " The prose contract is subjects/README.md.\"},"
		     "\"defaultContentType\":\"application/msgpack\",\"channels\":{");
	bool first = true;
	for (int k = 0; k < VOX_EVENT_KIND_COUNT; k++) {
		const char *name = vox_event_kind_name((vox_event_kind)k);
		if (!first)
			vox_buf_putc(b, ',');
		first = false;
		vox_buf_printf(b, "\"%s\":{\"address\":\"%s.{org_id}\",%s,"
			       "\"description\":\"subjects/%s.md; stream %s\","
			       "\"messages\":{\"%s\":{\"$ref\":\"#/components/messages/%s\"}}}",
			       name, name, org_param, name,
			       vox_event_kind_stream((vox_event_kind)k), name, name);
	}
	vox_buf_puts(b, ",\"dlq\":{\"address\":\"dlq.{original_subject}\","
		     "\"parameters\":{\"original_subject\":{\"description\":\"the"
		     " subject the message arrived on (several tokens)\"}},"
		     "\"description\":\"subjects/dlq.md; stream DLQ\","
		     "\"messages\":{\"dead_letter\":{\"$ref\":\"#/components/messages/dead_letter\"}}}");
	for (size_t i = 0; vox_request_subjects[i]; i++) {
		const char *subj = vox_request_subjects[i];
		vox_buf_printf(b, ",\"%s\":{\"address\":\"%s.{org_id}\",%s,"
			       "\"description\":\"subjects/%s\",\"messages\":{"
			       "\"request\":{\"$ref\":\"#/components/messages/%s.request\"}}}",
			       subj, subj, org_param, doc_of(subj), subj);
		vox_buf_printf(b, ",\"%s.reply\":{\"address\":null,\"description\":"
			       "\"the requester's inbox\",\"messages\":{"
			       "\"reply\":{\"$ref\":\"#/components/messages/%s.reply\"},"
			       "\"error\":{\"$ref\":\"#/components/messages/error_reply\"}}}",
			       subj, subj);
	}
	vox_buf_puts(b, "},\"operations\":{");
	first = true;
	for (int k = 0; k < VOX_EVENT_KIND_COUNT; k++) {
		const char *name = vox_event_kind_name((vox_event_kind)k);
		bool alert = strncmp(name, "alert.", 6) == 0;
		if (!first)
			vox_buf_putc(b, ',');
		first = false;
		vox_buf_printf(b, "\"%s %s\":{\"action\":\"%s\",\"channel\":"
			       "{\"$ref\":\"#/channels/%s\"}}",
			       alert ? "send" : "receive", name,
			       alert ? "send" : "receive", name);
	}
	vox_buf_puts(b, ",\"send dlq\":{\"action\":\"send\",\"channel\":"
		     "{\"$ref\":\"#/channels/dlq\"}}");
	for (size_t i = 0; vox_request_subjects[i]; i++) {
		const char *subj = vox_request_subjects[i];
		vox_buf_printf(b, ",\"answer %s\":{\"action\":\"receive\",\"channel\":"
			       "{\"$ref\":\"#/channels/%s\"},\"reply\":{\"channel\":"
			       "{\"$ref\":\"#/channels/%s.reply\"}}}",
			       subj, subj, subj);
	}
	vox_buf_puts(b, "},\"components\":{\"messages\":{");
	first = true;
	for (int k = 0; k < VOX_EVENT_KIND_COUNT; k++) {
		const char *name = vox_event_kind_name((vox_event_kind)k);
		if (!first)
			vox_buf_putc(b, ',');
		first = false;
		vox_buf_printf(b, "\"%s\":{\"name\":\"%s\",\"headers\":%s,\"payload\":",
			       name, name, event_headers);
		char desc[160];
		snprintf(desc, sizeof(desc), "%s, as in subjects/%s.md", name, name);
		vox_contract_json_schema(b, vox_event_schema((vox_event_kind)k),
					 VOX_SCHEMA_ALL, NULL, name, desc,
					 extra_rule((vox_event_kind)k));
		vox_buf_putc(b, '}');
	}
	vox_buf_printf(b, ",\"dead_letter\":{\"name\":\"dead_letter\",\"headers\":%s,"
		       "\"payload\":{\"description\":\"the original message, byte for"
		       " byte\"}}", dlq_headers);
	vox_buf_printf(b, ",\"error_reply\":{\"name\":\"error_reply\",\"headers\":%s,"
		       "\"payload\":{\"description\":\"empty\"}}", error_headers);
	for (size_t i = 0; vox_request_subjects[i]; i++) {
		const char *subj = vox_request_subjects[i];
		uint32_t only;
		const vox_schema *s = request_schema(subj, &only);
		char title[96], desc[160];
		names(title, sizeof(title), desc, sizeof(desc), subj, false);
		vox_buf_printf(b, ",\"%s.request\":{\"name\":\"%s.request\",\"payload\":",
			       subj, subj);
		vox_contract_json_schema(b, s, only, NULL, title, desc, NULL);
		vox_buf_printf(b, "},\"%s.reply\":{\"name\":\"%s.reply\",\"payload\":",
			       subj, subj);
		names(title, sizeof(title), desc, sizeof(desc), subj, true);
		vox_contract_reply_schema(b, vox_reply_shape(subj), NULL, title, desc);
		vox_buf_putc(b, '}');
	}
	vox_buf_puts(b, "}}}");
}

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: vox-contract DIR\n\nWrites the JSON Schemas"
			" and the AsyncAPI document of the contract into DIR"
			" (subjects/schema in the tree).\n");
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	const char *dir = argv[1];
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "vox-contract: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	int rc = 0;
	vox_buf b;
	vox_buf_init(&b);
	for (int k = 0; k < VOX_EVENT_KIND_COUNT; k++) {
		const char *name = vox_event_kind_name((vox_event_kind)k);
		char id[128], file[96], desc[160];
		snprintf(file, sizeof(file), "%s.json", name);
		snprintf(id, sizeof(id), BASE_ID "%s", file);
		snprintf(desc, sizeof(desc), "%s.<org_id>, as in subjects/%s.md "
			 "(the JSON form of its msgpack payload)", name, name);
		vox_buf_reset(&b);
		vox_contract_json_schema(&b, vox_event_schema((vox_event_kind)k),
					 VOX_SCHEMA_ALL, id, name, desc,
					 extra_rule((vox_event_kind)k));
		rc |= write_file(dir, file, &b);
	}
	for (size_t i = 0; vox_request_subjects[i]; i++) {
		const char *subj = vox_request_subjects[i];
		uint32_t only;
		const vox_schema *s = request_schema(subj, &only);
		char id[128], file[96], title[96], desc[160];
		snprintf(file, sizeof(file), "%s.request.json", subj);
		snprintf(id, sizeof(id), BASE_ID "%s", file);
		names(title, sizeof(title), desc, sizeof(desc), subj, false);
		vox_buf_reset(&b);
		vox_contract_json_schema(&b, s, only, id, title, desc, NULL);
		rc |= write_file(dir, file, &b);
		const vox_rshape *r = vox_reply_shape(subj);
		if (!r) {
			fprintf(stderr, "vox-contract: no reply shape for %s\n", subj);
			rc = 1;
			continue;
		}
		snprintf(file, sizeof(file), "%s.reply.json", subj);
		snprintf(id, sizeof(id), BASE_ID "%s", file);
		names(title, sizeof(title), desc, sizeof(desc), subj, true);
		vox_buf_reset(&b);
		vox_contract_reply_schema(&b, r, id, title, desc);
		rc |= write_file(dir, file, &b);
	}
	vox_buf_reset(&b);
	asyncapi(&b);
	rc |= write_file(dir, "asyncapi.json", &b);
	vox_buf_release(&b);
	return rc;
}
