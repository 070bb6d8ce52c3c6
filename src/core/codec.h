/*
 * codec.h - internal helpers of the event codec shared with voxctl and the
 * tests (the public API is include/vox/event.h).
 */
#ifndef VOX_CODEC_H
#define VOX_CODEC_H

#include "core/buf.h"
#include "vox/event.h"

/* Append ev as canonical JSON (see vox_event_to_json). */
void vox_event_json_into(const vox_event *ev, vox_buf *b);

/* "2026-11-24T10:00:00.123000000Z" */
void vox_time_rfc3339(const vox_time *t, char out[64]);

#endif
