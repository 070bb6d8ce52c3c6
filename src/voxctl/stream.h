/*
 * stream.h - what voxctl's stream commands (publish, tail, dlq) share:
 * a JetStream message rendered as JSON, NATS subject patterns, and the
 * JSON -> msgpack conversion of an event for its subject. Implemented in
 * cmd_tail.c (rendering, patterns) and cmd_publish.c (events).
 */
#ifndef VOX_VOXCTL_STREAM_H
#define VOX_VOXCTL_STREAM_H

#include "voxctl/voxctl.h"

#include "vox/event.h"

/*
 * Append m as a msgpack map {"subject", "seq" (when not 0), "time" (when
 * time_ns is not 0; a timestamp), "headers" {name: value}, "payload" (the
 * body itself when it is one msgpack value, else {"base64": text})}.
 * subject replaces the message's own when not NULL.
 */
void voxctl_pack_msg(msgpack_packer *pk, natsMsg *m, const char *subject,
		     uint64_t seq, int64_t time_ns);

/* Render voxctl_pack_msg's map as JSON into out (pretty or one line). */
void voxctl_msg_json(vox_buf *out, natsMsg *m, const char *subject,
		     uint64_t seq, int64_t time_ns, bool pretty);

/* Whether subject matches a NATS pattern ("*" one token, ">" the rest). */
bool voxctl_subject_match(const char *pattern, const char *subject);

/*
 * Convert a JSON value to the msgpack of an event for subject (timestamps
 * per the subject's kind) and validate it with the actors' decoder. On
 * success mp holds the bytes and *ev views into them. On failure the
 * reason is printed ("voxctl: [what: ]subject: field: reason") and false
 * is returned; what may be NULL.
 */
bool voxctl_event_from_json(const char *what, const char *subject,
			    const vox_json *v, vox_buf *mp, vox_event *ev);

#endif
