/*
 * http.c - an actor's HTTP endpoints on libmicrohttpd (see http.h).
 */
#include "io/http.h"

#include "io/log.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct vox_http {
	struct MHD_Daemon *d;
	const vox_http_route *routes;
	size_t nroutes;
	void *ctx;
	uint16_t port;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char text[256];
	VOX_UNUSED(cls);
	vsnprintf(text, sizeof(text), fmt, ap);
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = 0;
	vox_warn("msg=\"http\" error=\"%s\"", text);
}

/* Queue body (copied) with its status and type. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *ctype, vox_buf *body)
{
	if (!body->data)
		vox_buf_puts(body, "");
	struct MHD_Response *r = MHD_create_response_from_buffer(
		body->len, body->data, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	enum MHD_Result ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	vox_http *h = cls;
	VOX_UNUSED(version);
	VOX_UNUSED(upload);
	/* the first call only announces the request; answer on the next */
	if (*con_cls == NULL) {
		*con_cls = h;
		return MHD_YES;
	}
	if (*upload_size) { /* a body to a GET: read and ignored */
		*upload_size = 0;
		return MHD_YES;
	}
	const char *ctype = "text/plain; charset=utf-8";
	unsigned status = MHD_HTTP_NOT_FOUND;
	vox_buf body;
	vox_buf_init(&body);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		vox_buf_puts(&body, "only GET and HEAD\n");
	} else {
		size_t i = 0;
		while (i < h->nroutes && strcmp(url, h->routes[i].path) != 0)
			i++;
		if (i < h->nroutes)
			status = (unsigned)h->routes[i].fn(&body, &ctype, h->ctx);
		else
			vox_buf_puts(&body, "not found: /metrics, /healthz, /readyz\n");
	}
	enum MHD_Result ok = reply(c, status, ctype, &body);
	vox_buf_release(&body);
	return ok;
}

/* "host:port" or "[v6]:port" into its parts; false if it is neither. */
static bool split_addr(char *host, size_t hostlen, char *port, size_t portlen,
		       const char *addr)
{
	const char *colon;
	const char *h = addr;
	size_t hl;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return false;
		h = addr + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return false;
		hl = (size_t)(colon - addr);
	}
	size_t pl = strlen(colon + 1);
	if (hl == 0 || hl >= hostlen || pl == 0 || pl >= portlen ||
	    strspn(colon + 1, "0123456789") != pl)
		return false;
	memcpy(host, h, hl);
	host[hl] = 0;
	memcpy(port, colon + 1, pl + 1);
	return true;
}

vox_status vox_http_start(vox_http **out, const char *addr,
			  const vox_http_route *routes, size_t nroutes,
			  void *ctx, char *err, size_t errlen)
{
	char host[256], port[8];
	*out = NULL;
	if (!split_addr(host, sizeof(host), port, sizeof(port), addr) ||
	    strtol(port, NULL, 10) > 65535) {
		snprintf(err, errlen, "'%s' is not host:port or [v6]:port", addr);
		return VOX_E_CONFIG;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int gai = getaddrinfo(host, port, &hints, &ai);
	if (gai != 0) {
		snprintf(err, errlen, "'%s': %s", host, gai_strerror(gai));
		return VOX_E_CONFIG;
	}
	vox_http *h = vox_calloc(1, sizeof(*h));
	h->routes = routes;
	h->nroutes = nroutes;
	h->ctx = ctx;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s (in use, or not an"
			 " address of this machine)", addr);
		free(h);
		return VOX_E_UNAVAILABLE;
	}
	const union MHD_DaemonInfo *di =
		MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : 0;
	*out = h;
	return VOX_OK;
}

uint16_t vox_http_port(const vox_http *h)
{
	return h->port;
}

void vox_http_stop(vox_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
