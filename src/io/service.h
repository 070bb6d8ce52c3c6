/*
 * service.h - the NATS services protocol (ADR-32) on plain libnats
 * subscriptions, since libnats 3.4.1 has no micro API. Each vox process is
 * one service instance: it answers $SRV.PING/INFO/STATS (nine subjects) with
 * the exact JSON shapes standard tooling validates, and serves its
 * endpoints as queue subscriptions in group "q" with per-endpoint stats.
 */
#ifndef VOX_SERVICE_H
#define VOX_SERVICE_H

#include "core/buf.h"

#include <nats/nats.h>

typedef struct vox_service vox_service;
typedef struct vox_request vox_request;

/* Handles one request. Must answer exactly once with vox_request_respond
 * or vox_request_fail; a handler that does neither gets a 500 sent for
 * it. Called on a libnats delivery thread: endpoints run concurrently. */
typedef void (*vox_endpoint_fn)(vox_request *req, void *ctx);

/* Appends JSON object members ("k":"v",...) without braces. Metadata values
 * must be strings (ADR-32). Called on the $SRV delivery thread. */
typedef void (*vox_service_meta_fn)(vox_buf *members, void *ctx);

/*
 * Create a service on nc (borrowed; must outlive the service). name must
 * match [A-Za-z0-9_-]+, version is SemVer. Returns VOX_E_INVALID for a bad
 * name. The caller frees with vox_service_free.
 */
vox_status vox_service_new(vox_service **out, natsConnection *nc,
			   const char *name, const char *version,
			   const char *description) VOX_MUST_CHECK;

/* Add an endpoint before vox_service_start. subject may have wildcards. */
vox_status vox_service_add_endpoint(vox_service *svc, const char *name,
				    const char *subject, vox_endpoint_fn fn,
				    void *ctx) VOX_MUST_CHECK;

/* Serve each endpoint with n queue subscriptions (1 by default, at most
 * 16): n delivery threads, so up to n requests of an endpoint run at once.
 * Before vox_service_start; VOX_E_INVALID otherwise or for a bad n. */
vox_status vox_service_set_workers(vox_service *svc, int n) VOX_MUST_CHECK;

void vox_service_set_metadata_fn(vox_service *svc, vox_service_meta_fn fn,
				 void *ctx);

/* Subscribe to the nine $SRV subjects and every endpoint. */
vox_status vox_service_start(vox_service *svc) VOX_MUST_CHECK;

/* Drain every subscription and wait (bounded) for in-flight handlers. */
void vox_service_stop(vox_service *svc);

/* Stops if needed, then frees. Accepts NULL. */
void vox_service_free(vox_service *svc);

/* The instance id (22 base62 chars), valid while svc lives. */
const char *vox_service_id(const vox_service *svc);

/* Writers of the three $SRV responses; exposed for tests. */
void vox_service_ping_json(vox_buf *out, vox_service *svc);
void vox_service_info_json(vox_buf *out, vox_service *svc);
void vox_service_stats_json(vox_buf *out, vox_service *svc);
/* The endpoints' latency histograms and refusals by reason, in the
 * Prometheus text format. */
void vox_service_metrics(vox_service *svc, vox_buf *out);

/* Request accessors: borrowed, valid during the handler. */
const char *vox_request_subject(const vox_request *req);
const char *vox_request_data(const vox_request *req, size_t *len);
natsMsg *vox_request_msg(const vox_request *req);

/* The org a request is for: the subject's last token, which must be a
 * UUID; org gets it lowercased. False when it is not one. */
bool vox_request_org(const vox_request *req, char org[37]);

/* Reply with a body (msgpack by convention). A reply that cannot be sent
 * is logged; the client's timeout answers for it, and an endpoint could do
 * no better, so nothing is returned. */
void vox_request_respond(vox_request *req, const void *data, size_t len);

/* Refuse with e: an empty body, Nats-Service-Error (e's message) and
 * Nats-Service-Error-Code (the code status.c gives e's status: 400, 404,
 * 409, 413, 500, 503, ...), and Vox-Error-Reason and Vox-Error-Field when
 * e has them, as a dead letter carries them; counted as an endpoint error
 * with the message as last_error. The one way endpoints answer an error. */
void vox_request_fail(vox_request *req, const vox_error *e);

/* vox_request_fail with an error made here (see vox_error_set). */
void vox_request_failf(vox_request *req, vox_status st, const char *reason,
		       const char *field, const char *fmt, ...) VOX_PRINTF(5, 6);

/* The refusals every tenant's endpoint shares, written to *err (returned):
 * 400 "org_id: the subject's last token must be a UUID" and 404
 * "org_id: no such organization". */
const vox_error *vox_request_bad_org(vox_error *err);
const vox_error *vox_request_no_org(vox_error *err);

/* The answer to a failed database step with status st, written to *err
 * (returned): 503 when trying again may work ("database unavailable",
 * or "database busy" for a timeout), 500 "database error" otherwise. */
const vox_error *vox_request_db_error(vox_error *err, vox_status st);

#endif
