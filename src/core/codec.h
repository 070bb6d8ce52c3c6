/*
 * codec.h - internal helpers of the event codec shared with voxctl and the
 * tests (the public API is include/vox/event.h).
 */
#ifndef VOX_CODEC_H
#define VOX_CODEC_H

#include "core/buf.h"
#include "core/mp.h"
#include "core/schema.h"
#include "vox/event.h"

#include <msgpack.h>

/* Append ev as canonical JSON (see vox_event_to_json). */
void vox_event_json_into(vox_buf *b, const vox_event *ev);

/* "2026-11-24T10:00:00.123000000Z" */
void vox_time_rfc3339(char out[64], const vox_time *t);

/* Parse an RFC 3339 date-time ("2026-11-24T10:00:00.123Z", an offset
 * "+01:00" instead of Z, up to 9 fraction digits). False for anything
 * else, including impossible dates. */
bool vox_time_parse_rfc3339(vox_time *out, const char *s, size_t n);

/* Whether key names a timestamp field of messages of this kind. */
bool vox_event_key_is_time(vox_event_kind kind, const char *key, size_t n);

/* Whether v would pass the rules of the string field key (an id, a text,
 * a phone) of messages of this kind: what an actor checks before it puts
 * a value it did not decode itself (a stored contact's phone or name)
 * into a message it emits. False for an absent value, an unknown key or
 * a key that is not a string field. */
bool vox_event_str_fits(vox_event_kind kind, const char *key, vox_str v);

/* msgpack-c's write callback for a packer that appends to a vox_buf:
 * msgpack_packer_init(&pk, &buf, vox_mp_buf_write). */
int vox_mp_buf_write(void *buf, const char *p, size_t n);

/* Pack a NUL-terminated string as a msgpack str. */
void vox_mp_pack_cstr(msgpack_packer *pk, const char *s);

/* Write t as the smallest ext -1 form that holds it. */
void vox_time_pack(msgpack_packer *pk, const vox_time *t);

#endif
