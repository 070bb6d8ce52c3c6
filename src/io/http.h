/*
 * http.h - the small HTTP server of an actor (/metrics, /healthz,
 * /readyz), on libmicrohttpd: GET and HEAD of a fixed set of paths, each
 * answered by a function that fills a body. A thread per connection (at
 * most 16), so a slow readiness check never holds up a scrape.
 */
#ifndef VOX_HTTP_H
#define VOX_HTTP_H

#include "core/buf.h"
#include "core/common.h"

#include <stdint.h>

typedef struct vox_http vox_http;

/* Fills body and returns the HTTP status; *content_type defaults to
 * text/plain. Runs on the server's threads, concurrently. */
typedef int (*vox_http_fn)(vox_buf *body, const char **content_type,
			   void *ctx);

typedef struct vox_http_route {
	const char *path;
	vox_http_fn fn;
} vox_http_route;

/*
 * Listen on addr ("host:port", "[v6]:port"; port 0 picks a free one) and
 * serve routes (borrowed, with ctx, until vox_http_stop). VOX_E_CONFIG
 * for an address that is not one, VOX_E_UNAVAILABLE when it cannot be
 * bound; err says why.
 */
vox_status vox_http_start(vox_http **out, const char *addr,
			  const vox_http_route *routes, size_t nroutes,
			  void *ctx, char *err, size_t errlen) VOX_MUST_CHECK;

/* The port listened on (the one picked for port 0). */
uint16_t vox_http_port(const vox_http *h);

/* Close the socket, finish the requests in progress, free. NULL ignored. */
void vox_http_stop(vox_http *h);

#endif
