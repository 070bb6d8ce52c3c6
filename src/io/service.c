/*
 * service.c - ADR-32 services protocol on plain subscriptions.
 */
#include "io/service.h"

#include "core/codec.h"
#include "core/metrics.h"
#include "io/log.h"
#include "io/natsconn.h"

#include <pthread.h>
#include <sodium.h>
#include <time.h>

#define SRV_MAX_ENDPOINTS 16
#define SRV_ID_LEN 22
#define SRV_MAX_WORKERS 16

typedef struct endpoint {
	char *name;
	char *subject;
	vox_endpoint_fn fn;
	void *ctx;
	vox_service *svc;
	/* svc->workers queue subscriptions in group "q": each has its own
	 * delivery thread, so up to that many requests run at once */
	natsSubscription *subs[SRV_MAX_WORKERS];
	/* stats, under svc->lock */
	int64_t num_requests;
	int64_t num_errors;
	int64_t processing_ns;
	char last_error[256];
	/* /metrics: latencies and refusals by reason (their own locks) */
	vox_hist latency_us;
	vox_counter_set errors;
} endpoint;

struct vox_service {
	natsConnection *nc;
	char *name;
	char *version;
	char *description;
	char id[SRV_ID_LEN + 1];
	char started[80];
	pthread_mutex_t lock;
	endpoint endpoints[SRV_MAX_ENDPOINTS];
	size_t nendpoints;
	int workers;
	natsSubscription *srv_subs[9];
	size_t nsrv;
	vox_service_meta_fn meta_fn;
	void *meta_ctx;
	bool started_flag;
};

struct vox_request {
	natsMsg *msg;
	endpoint *ep;
	bool answered;
	bool failed;
	char error[256];
	char reason[48];
};

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void make_id(char *out)
{
	static const char alphabet[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	for (int i = 0; i < SRV_ID_LEN; i++)
		out[i] = alphabet[randombytes_uniform(62)];
	out[SRV_ID_LEN] = '\0';
}

vox_status vox_service_new(vox_service **out, natsConnection *nc,
			   const char *name, const char *version,
			   const char *description)
{
	if (!valid_name(name))
		return VOX_E_INVALID;
	if (sodium_init() < 0)
		return VOX_E_INTERNAL;
	vox_service *svc = vox_calloc(1, sizeof(*svc));
	svc->nc = nc;
	svc->name = vox_strndup(name, strlen(name));
	svc->version = vox_strndup(version, strlen(version));
	svc->description = vox_strndup(description, strlen(description));
	make_id(svc->id);
	svc->workers = 1;
	pthread_mutex_init(&svc->lock, NULL);

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(svc->started, sizeof(svc->started),
		 "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts.tv_nsec);
	*out = svc;
	return VOX_OK;
}

vox_status vox_service_add_endpoint(vox_service *svc, const char *name,
				    const char *subject, vox_endpoint_fn fn,
				    void *ctx)
{
	if (svc->started_flag || svc->nendpoints == SRV_MAX_ENDPOINTS ||
	    !valid_name(name))
		return VOX_E_INVALID;
	endpoint *ep = &svc->endpoints[svc->nendpoints++];
	memset(ep, 0, sizeof(*ep));
	ep->name = vox_strndup(name, strlen(name));
	ep->subject = vox_strndup(subject, strlen(subject));
	ep->fn = fn;
	ep->ctx = ctx;
	ep->svc = svc;
	vox_hist_init(&ep->latency_us, vox_hist_latency_us, vox_hist_latency_n,
		      1e-6);
	vox_counter_set_init(&ep->errors);
	return VOX_OK;
}

void vox_service_set_metadata_fn(vox_service *svc, vox_service_meta_fn fn,
				 void *ctx)
{
	svc->meta_fn = fn;
	svc->meta_ctx = ctx;
}

const char *vox_service_id(const vox_service *svc)
{
	return svc->id;
}

static void json_common(vox_service *svc, vox_buf *out, const char *type)
{
	vox_buf_puts(out, "{\"type\":");
	vox_buf_json_str(out, type, strlen(type));
	vox_buf_puts(out, ",\"name\":");
	vox_buf_json_str(out, svc->name, strlen(svc->name));
	vox_buf_puts(out, ",\"id\":");
	vox_buf_json_str(out, svc->id, strlen(svc->id));
	vox_buf_puts(out, ",\"version\":");
	vox_buf_json_str(out, svc->version, strlen(svc->version));
	vox_buf_puts(out, ",\"metadata\":{");
	if (svc->meta_fn)
		svc->meta_fn(out, svc->meta_ctx);
	vox_buf_putc(out, '}');
}

static void json_endpoint_head(const endpoint *ep, vox_buf *out)
{
	vox_buf_puts(out, "{\"name\":");
	vox_buf_json_str(out, ep->name, strlen(ep->name));
	vox_buf_puts(out, ",\"subject\":");
	vox_buf_json_str(out, ep->subject, strlen(ep->subject));
	vox_buf_puts(out, ",\"queue_group\":\"q\"");
}

void vox_service_ping_json(vox_buf *out, vox_service *svc)
{
	json_common(svc, out, "io.nats.micro.v1.ping_response");
	vox_buf_putc(out, '}');
}

void vox_service_info_json(vox_buf *out, vox_service *svc)
{
	json_common(svc, out, "io.nats.micro.v1.info_response");
	vox_buf_puts(out, ",\"description\":");
	vox_buf_json_str(out, svc->description, strlen(svc->description));
	vox_buf_puts(out, ",\"endpoints\":[");
	for (size_t i = 0; i < svc->nendpoints; i++) {
		if (i)
			vox_buf_putc(out, ',');
		json_endpoint_head(&svc->endpoints[i], out);
		vox_buf_puts(out, ",\"metadata\":null}");
	}
	vox_buf_puts(out, "]}");
}

void vox_service_stats_json(vox_buf *out, vox_service *svc)
{
	json_common(svc, out, "io.nats.micro.v1.stats_response");
	vox_buf_puts(out, ",\"started\":");
	vox_buf_json_str(out, svc->started, strlen(svc->started));
	vox_buf_puts(out, ",\"endpoints\":[");
	pthread_mutex_lock(&svc->lock);
	for (size_t i = 0; i < svc->nendpoints; i++) {
		const endpoint *ep = &svc->endpoints[i];
		if (i)
			vox_buf_putc(out, ',');
		json_endpoint_head(ep, out);
		vox_buf_printf(out,
			       ",\"num_requests\":%" PRId64
			       ",\"num_errors\":%" PRId64 ",\"last_error\":",
			       ep->num_requests, ep->num_errors);
		vox_buf_json_str(out, ep->last_error, strlen(ep->last_error));
		vox_buf_printf(out,
			       ",\"processing_time\":%" PRId64
			       ",\"average_processing_time\":%" PRId64 "}",
			       ep->processing_ns,
			       ep->num_requests ? ep->processing_ns / ep->num_requests
						: 0);
	}
	pthread_mutex_unlock(&svc->lock);
	vox_buf_puts(out, "]}");
}

/* One family's series, one (or a counter set's several) per endpoint. */
static void endpoint_series(vox_service *svc, vox_buf *out, bool errors)
{
	for (size_t i = 0; i < svc->nendpoints; i++) {
		endpoint *ep = &svc->endpoints[i];
		vox_buf l;
		vox_buf_init(&l);
		vox_prom_label(&l, "endpoint", ep->name);
		if (errors)
			vox_prom_counter_set(out, "vox_request_errors_total", l.data,
					     "reason", &ep->errors);
		else
			vox_prom_hist(out, "vox_request_duration_seconds", l.data,
				      &ep->latency_us);
		vox_buf_release(&l);
	}
}

void vox_service_metrics(vox_service *svc, vox_buf *out)
{
	vox_prom_family(out, "vox_request_duration_seconds", "histogram",
			"time to answer a request, by endpoint");
	endpoint_series(svc, out, false);
	vox_prom_family(out, "vox_request_errors_total", "counter",
			"requests answered with an error, by endpoint and"
			" reason (Vox-Error-Reason)");
	endpoint_series(svc, out, true);
}

static void on_srv(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
		   void *closure)
{
	vox_service *svc = closure;
	VOX_UNUSED(sub);
	const char *subj = natsMsg_GetSubject(msg);
	const char *reply = natsMsg_GetReply(msg);
	vox_buf b;
	vox_buf_init(&b);
	/* The verb is the second token; the request body is ignored. */
	if (reply) {
		if (strncmp(subj, "$SRV.PING", 9) == 0)
			vox_service_ping_json(&b, svc);
		else if (strncmp(subj, "$SRV.INFO", 9) == 0)
			vox_service_info_json(&b, svc);
		else
			vox_service_stats_json(&b, svc);
		natsConnection_Publish(nc, reply, b.data, (int)b.len);
	}
	vox_buf_release(&b);
	natsMsg_Destroy(msg);
}

static void on_endpoint(natsConnection *nc, natsSubscription *sub,
			natsMsg *msg, void *closure)
{
	endpoint *ep = closure;
	vox_request req = {.msg = msg, .ep = ep};
	VOX_UNUSED(nc);
	VOX_UNUSED(sub);
	int64_t t0 = now_ns();
	ep->fn(&req, ep->ctx);
	if (!req.answered)
		vox_request_failf(&req, VOX_E_INTERNAL, "internal", NULL,
				  "handler gave no answer");
	int64_t dt = now_ns() - t0;
	/* the error before the count: a scrape that sees the request
	 * counted sees its error too */
	if (req.failed)
		vox_counter_set_add(&ep->errors, req.reason, 1);
	vox_hist_observe(&ep->latency_us, (uint64_t)(dt / 1000));
	pthread_mutex_lock(&ep->svc->lock);
	ep->num_requests++;
	ep->processing_ns += dt;
	if (req.failed) {
		ep->num_errors++;
		snprintf(ep->last_error, sizeof(ep->last_error), "%s",
			 req.error);
	}
	pthread_mutex_unlock(&ep->svc->lock);
	natsMsg_Destroy(msg);
}

vox_status vox_service_start(vox_service *svc)
{
	static const char *verbs[] = {"PING", "INFO", "STATS"};
	char subj[256];
	natsStatus s = NATS_OK;

	for (size_t v = 0; v < 3 && s == NATS_OK; v++) {
		for (int depth = 0; depth < 3 && s == NATS_OK; depth++) {
			if (depth == 0)
				snprintf(subj, sizeof(subj), "$SRV.%s", verbs[v]);
			else if (depth == 1)
				snprintf(subj, sizeof(subj), "$SRV.%s.%s",
					 verbs[v], svc->name);
			else
				snprintf(subj, sizeof(subj), "$SRV.%s.%s.%s",
					 verbs[v], svc->name, svc->id);
			s = natsConnection_Subscribe(&svc->srv_subs[svc->nsrv],
						     svc->nc, subj, on_srv, svc);
			if (s == NATS_OK)
				svc->nsrv++;
		}
	}
	for (size_t i = 0; i < svc->nendpoints && s == NATS_OK; i++) {
		endpoint *ep = &svc->endpoints[i];
		for (int w = 0; w < svc->workers && s == NATS_OK; w++)
			s = natsConnection_QueueSubscribe(&ep->subs[w], svc->nc,
							  ep->subject, "q",
							  on_endpoint, ep);
	}
	if (s == NATS_OK)
		s = natsConnection_Flush(svc->nc);
	svc->started_flag = true;
	if (s != NATS_OK) {
		vox_error("msg=\"service subscribe failed\" error=\"%s\"",
			  natsStatus_GetText(s));
		return vox_nats_status(s);
	}
	return VOX_OK;
}

static void drain_sub(natsSubscription **sub)
{
	if (!*sub)
		return;
	if (natsSubscription_Drain(*sub) == NATS_OK)
		natsSubscription_WaitForDrainCompletion(*sub, 5000);
	natsSubscription_Destroy(*sub);
	*sub = NULL;
}

void vox_service_stop(vox_service *svc)
{
	for (size_t i = 0; i < svc->nendpoints; i++)
		for (int w = 0; w < SRV_MAX_WORKERS; w++)
			drain_sub(&svc->endpoints[i].subs[w]);
	for (size_t i = 0; i < svc->nsrv; i++)
		drain_sub(&svc->srv_subs[i]);
	svc->nsrv = 0;
}

void vox_service_free(vox_service *svc)
{
	if (!svc)
		return;
	vox_service_stop(svc);
	for (size_t i = 0; i < svc->nendpoints; i++) {
		free(svc->endpoints[i].name);
		free(svc->endpoints[i].subject);
		vox_counter_set_destroy(&svc->endpoints[i].errors);
	}
	pthread_mutex_destroy(&svc->lock);
	free(svc->name);
	free(svc->version);
	free(svc->description);
	free(svc);
}

vox_status vox_service_set_workers(vox_service *svc, int n)
{
	if (svc->started_flag || n < 1 || n > SRV_MAX_WORKERS)
		return VOX_E_INVALID;
	svc->workers = n;
	return VOX_OK;
}

bool vox_request_org(const vox_request *req, char org[37])
{
	const char *subject = natsMsg_GetSubject(req->msg);
	const char *dot = subject ? strrchr(subject, '.') : NULL;
	vox_uuid u;
	if (!dot || !vox_uuid_parse(&u, dot + 1, strlen(dot + 1)))
		return false;
	memcpy(org, u.s, 37);
	return true;
}

const char *vox_request_subject(const vox_request *req)
{
	return natsMsg_GetSubject(req->msg);
}

const char *vox_request_data(const vox_request *req, size_t *len)
{
	*len = (size_t)natsMsg_GetDataLength(req->msg);
	return natsMsg_GetData(req->msg);
}

natsMsg *vox_request_msg(const vox_request *req)
{
	return req->msg;
}

/* A reply that was not sent: the client times out; say why here. */
static void unsent(const vox_request *req, natsStatus s)
{
	if (s != NATS_OK)
		vox_warn("msg=\"reply not sent\" subject=%s error=\"%s\"",
			 natsMsg_GetSubject(req->msg), natsStatus_GetText(s));
}

void vox_request_respond(vox_request *req, const void *data, size_t len)
{
	natsStatus s = NATS_OK;
	const char *reply = natsMsg_GetReply(req->msg);
	req->answered = true;
	if (reply)
		s = natsConnection_Publish(req->ep->svc->nc, reply,
					   data, (int)len);
	unsent(req, s);
}

void vox_request_fail(vox_request *req, const vox_error *e)
{
	natsMsg *m = NULL;
	natsStatus s = NATS_OK;
	char codebuf[16];
	const char *reply = natsMsg_GetReply(req->msg);

	req->answered = true;
	req->failed = true;
	snprintf(req->error, sizeof(req->error), "%s", e->message);
	snprintf(req->reason, sizeof(req->reason), "%s",
		 e->code ? e->code : "internal");
	if (!reply)
		return;
	snprintf(codebuf, sizeof(codebuf), "%d", vox_status_code(e->status));
	s = natsMsg_Create(&m, reply, NULL, NULL, 0);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Service-Error", e->message);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Service-Error-Code", codebuf);
	if (s == NATS_OK && e->code)
		s = natsMsgHeader_Set(m, "Vox-Error-Reason", e->code);
	if (s == NATS_OK && e->field[0])
		s = natsMsgHeader_Set(m, "Vox-Error-Field", e->field);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(req->ep->svc->nc, m);
	natsMsg_Destroy(m);
	unsent(req, s);
}

void vox_request_failf(vox_request *req, vox_status st, const char *reason,
		       const char *field, const char *fmt, ...)
{
	vox_error e;
	char text[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	vox_error_set(&e, st, reason, field, "%s", text);
	vox_request_fail(req, &e);
}

const vox_error *vox_request_bad_org(vox_error *err)
{
	vox_error_set(err, VOX_E_INVALID, "bad_uuid", "org_id",
		      "the subject's last token must be a UUID");
	return err;
}

const vox_error *vox_request_db_error(vox_error *err, vox_status st)
{
	if (st == VOX_E_TIMEOUT)
		vox_error_set(err, st, "timeout", NULL, "database busy");
	else if (vox_status_is_transient(st))
		vox_error_set(err, VOX_E_UNAVAILABLE, "unavailable", NULL,
			      "database unavailable");
	else
		vox_error_set(err, VOX_E_INTERNAL, "internal", NULL,
			      "database error");
	return err;
}

const vox_error *vox_request_no_org(vox_error *err)
{
	vox_error_set(err, VOX_E_UNKNOWN_ORG, "unknown_org", "org_id",
		      "no such organization");
	return err;
}
