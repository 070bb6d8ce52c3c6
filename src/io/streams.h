/*
 * streams.h - the JetStream streams vox needs: EVENTS (call.*.*,
 * payment.*.*, lead.*.*), ALERTS (alert.>) and DLQ (dlq.>), described once
 * from the stream settings of vox_runtime_vars (VOX_STREAM_REPLICAS,
 * VOX_STREAM_MAX_AGE_H, VOX_DLQ_MAX_AGE_H, VOX_STREAM_MAX_MB,
 * VOX_DUPLICATE_WINDOW_S).
 *
 * The streams belong to the operator: `voxctl streams apply` creates or
 * updates them (vox_streams_apply) with the NATS user that may (admin). A
 * consuming actor only reads them at start (vox_streams_verify): a missing
 * stream is waited for, one that would drop data (core/stream_check.h)
 * stops it, and a difference that drops nothing is a warning.
 */
#ifndef VOX_STREAMS_H
#define VOX_STREAMS_H

#include "core/config.h"
#include "core/stream_check.h"
#include "io/runtime.h"

#include <nats/nats.h>

/* EVENTS, ALERTS, DLQ. */
#define VOX_STREAMS_COUNT 3

/*
 * Parse only the stream settings of vox_runtime_vars into their fields of
 * *out (the other fields are left alone): what voxctl and the tests need
 * without an actor's whole configuration. VOX_E_CONFIG with one line per
 * bad variable in errors.
 */
vox_status vox_streams_config_parse(vox_runtime_config *out,
				    vox_cfg_getenv getenv_fn, void *ctx,
				    vox_buf *errors) VOX_MUST_CHECK;

/* --help text of those variables. */
void vox_streams_config_help(FILE *f);

/* Stream i (0 .. VOX_STREAMS_COUNT - 1) as cfg wants it. The strings are
 * static. */
void vox_streams_wanted(vox_stream_spec *out, size_t i,
			const vox_runtime_config *cfg);

/* A stream as the server describes it. Borrows from c (valid while the
 * jsStreamInfo it came from lives). */
void vox_streams_from_js(vox_stream_spec *out, const jsStreamConfig *c);

typedef enum vox_stream_action {
	VOX_STREAM_CREATED,
	VOX_STREAM_UPDATED,
	VOX_STREAM_UNCHANGED,
} vox_stream_action;

/* Told what apply did to one stream; for UPDATED, diffs lists each
 * setting that changed (found is the old value, wanted the new one). */
typedef void (*vox_streams_applied_fn)(const char *stream,
				       vox_stream_action action,
				       const vox_stream_diff *diffs, size_t n,
				       void *ctx);

/*
 * Create each stream that is missing and update each that differs from
 * cfg; report(...) is called once per stream, in order. An update that
 * would itself drop data that the stream keeps today (fewer replicas, a
 * shorter max age, fewer subjects, ...) is refused with VOX_E_CONFLICT
 * unless force, and nothing more is changed. Safe to run concurrently and
 * to re-run. Transient statuses when JetStream does not answer;
 * VOX_E_CONFIG when the server refuses a configuration (err says why).
 */
vox_status vox_streams_apply(jsCtx *js, const vox_runtime_config *cfg,
			     bool force, vox_streams_applied_fn report,
			     void *ctx, char *err, size_t errlen) VOX_MUST_CHECK;

/* Told each difference verify finds. */
typedef void (*vox_streams_diff_fn)(const char *stream,
				    const vox_stream_diff *d, void *ctx);

/*
 * Read the three streams and compare them with cfg. Only once all three
 * exist are their differences passed to fn (so a caller retrying while a
 * stream is missing hears each difference once).
 *   VOX_OK           every stream exists and none would drop data
 *   VOX_E_NOT_FOUND  a stream does not exist (err names it)
 *   VOX_E_CONFIG     a stream would drop data (err names the first such
 *                    setting; every difference went to fn)
 *   transient        JetStream did not answer (err says why)
 */
vox_status vox_streams_verify(jsCtx *js, const vox_runtime_config *cfg,
			      vox_streams_diff_fn fn, void *ctx, char *err,
			      size_t errlen) VOX_MUST_CHECK;

#endif
