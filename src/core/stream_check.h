/*
 * stream_check.h - which differences between a JetStream stream as it is
 * and as vox's configuration wants it would lose messages, as a pure
 * function. The streams belong to the operator (`voxctl streams apply`);
 * an actor only compares them at start and refuses to run on one that
 * would drop data. No I/O: src/io/streams.c reads the stream from the
 * server into a vox_stream_spec; the unit tests drive every rule.
 *
 * Rules (found against wanted), each a difference of one setting:
 *   drops data (the actor refuses to start):
 *     subjects    a wanted subject that no found subject covers
 *     storage     memory (everything is gone when the server restarts)
 *     retention   interest or workqueue (messages deleted once acked)
 *     replicas    fewer than wanted
 *     max_age, max_bytes, max_msgs, max_msgs_per_subject
 *                 a limit where none is wanted, or a smaller one
 *     max_msg_size  a limit below the wanted one (VOX_MAX_MESSAGE)
 *   drops nothing (a warning; the actor starts):
 *     the same settings the other way round (more subjects, more
 *     replicas, longer or no limits), discard new (a full stream refuses
 *     publishes, the publisher sees it and retries: no silent loss),
 *     another duplicate window (a repeat outside it is stored again and
 *     the database's idempotency records drop it), sealed, no_ack.
 */
#ifndef VOX_STREAM_CHECK_H
#define VOX_STREAM_CHECK_H

#include "core/common.h"

typedef enum vox_stream_storage {
	VOX_STREAM_FILE = 0,
	VOX_STREAM_MEMORY,
} vox_stream_storage;

typedef enum vox_stream_retention {
	VOX_RETAIN_LIMITS = 0,
	VOX_RETAIN_INTEREST,
	VOX_RETAIN_WORKQUEUE,
} vox_stream_retention;

/* A stream's settings, as much of them as can lose or refuse messages.
 * Limits <= 0 mean unlimited (JetStream's -1, and 0 for max_age). */
typedef struct vox_stream_spec {
	const char *name;
	const char *const *subjects; /* borrowed */
	size_t nsubjects;
	vox_stream_storage storage;
	vox_stream_retention retention;
	int64_t replicas; /* <= 0 is read as 1, the server's default */
	int64_t max_age_ns;
	int64_t max_bytes;
	int64_t max_msgs;
	int64_t max_msgs_per_subject;
	int64_t max_msg_size;
	bool discard_new;
	int64_t duplicates_ns;
	bool sealed;
	bool no_ack;
} vox_stream_spec;

typedef enum vox_stream_severity {
	VOX_STREAM_WARN = 1,  /* differs, drops nothing */
	VOX_STREAM_DROPS = 2, /* would lose or refuse our messages */
} vox_stream_severity;

/* At most one difference per setting. */
#define VOX_STREAM_SETTINGS 13

/* One setting that differs. Values are text, as an operator reads them:
 * "168h", "file", "call.*.*,payment.*.*", "unlimited". */
typedef struct vox_stream_diff {
	const char *setting; /* "max_age", "storage", ... (static) */
	vox_stream_severity severity;
	char found[160];
	char wanted[160];
	const char *why; /* one sentence (static) */
} vox_stream_diff;

/*
 * Compare found with wanted. Writes the differences, in the order of the
 * rules above, to out (room for VOX_STREAM_SETTINGS) and returns how many
 * there are; 0 when found is what wanted asks for.
 */
size_t vox_stream_compare(vox_stream_diff out[VOX_STREAM_SETTINGS],
			  const vox_stream_spec *found,
			  const vox_stream_spec *wanted);

/* True when one of the n differences drops data. */
bool vox_stream_diffs_drop(const vox_stream_diff *d, size_t n);

/*
 * True when every subject that matches sub also matches pattern (NATS
 * wildcards: "*" one token, ">" one or more tokens at the end):
 * "call.>" covers "call.*.*", "call.*.*" covers "call.ended.x", and
 * "call.*" does not cover "call.*.*".
 */
bool vox_stream_subject_covers(const char *pattern, const char *sub);

/* "warning" or "drops_data". */
const char *vox_stream_severity_name(vox_stream_severity s);

/* A duration in nanoseconds as text, in the units of the VOX_*_H and
 * VOX_*_S variables: "unlimited" for <= 0, else "168h", "120s" or
 * "1500ms" (the largest of them that divides it). */
void vox_stream_format_duration(char *out, size_t n, int64_t ns);

#endif
