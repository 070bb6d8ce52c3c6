/*
 * vox/subjects.h - every NATS subject and stream name of the contract, kept
 * in one table (src/core/subjects.c) instead of literals spread through the
 * code. Event and alert subjects end with the org id token:
 * "call.started.<org_id>".
 */
#ifndef VOX_SUBJECTS_H
#define VOX_SUBJECTS_H

#include <stdbool.h>
#include <stddef.h>

#include "vox/event.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Streams. */
#define VOX_STREAM_EVENTS "EVENTS" /* call.*.*, payment.*.*, lead.*.* */
#define VOX_STREAM_ALERTS "ALERTS" /* alert.> */
#define VOX_STREAM_DLQ "DLQ"       /* dlq.> */
#define VOX_DLQ_PREFIX "dlq."

/* Dead-letter headers. */
#define VOX_HDR_ERROR "Vox-Error"
#define VOX_HDR_ERROR_CODE "Vox-Error-Code"
#define VOX_HDR_STREAM_SEQ "Vox-Stream-Seq"
#define VOX_HDR_ACTOR "Vox-Actor"
#define VOX_HDR_SCHEMA "Vox-Schema"

/* The subject prefix of a kind ("call.started"), NULL for a bad kind. */
const char *vox_event_kind_name(vox_event_kind kind);

/* The stream that captures a kind: VOX_STREAM_EVENTS or _ALERTS. */
const char *vox_event_kind_stream(vox_event_kind kind);

/* Look a kind up by its name ("lead.scored"); false if unknown. */
bool vox_event_kind_from_name(vox_event_kind *kind, const char *name,
			      size_t len) VOX_MUST_CHECK;

/*
 * Split "<kind name>.<org token>" into the kind and a view of the org
 * token (not NUL-terminated, borrowed from subject). False when the
 * subject is not an event or alert subject of the contract, or the token
 * is empty or has a dot.
 */
bool vox_subject_parse(vox_event_kind *kind, const char **org,
		       size_t *orglen, const char *subject) VOX_MUST_CHECK;

/* Write "<kind name>.<org>" into buf. Returns false if it does not fit. */
bool vox_subject_format(char *buf, size_t n, vox_event_kind kind,
			const char *org) VOX_MUST_CHECK;

/* The request-reply subjects ("query.wallet", "credentials.get", ...),
 * each answered as "<name>.<org_id>". NULL-terminated. */
extern const char *const vox_request_subjects[];

#ifdef __cplusplus
}
#endif

#endif
