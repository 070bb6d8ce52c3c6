/*
 * publish.c - vox-bench's publisher: async JetStream publishing with a
 * bound on the acks in flight, failed acks published again (their
 * Nats-Msg-Id makes a repeat harmless), and the paced publishing of a
 * run's calls that e2e, limit and baseline share (bench.h).
 */
#include "bench/bench.h"

#include "io/natsconn.h"
#include "vox/client.h"

static void on_pub_err(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	bench_pub *p = closure;
	atomic_fetch_add(&p->failed, 1);
	if (atomic_load(&p->resent) < 100000 &&
	    js_PublishMsgAsync(js, &pae->Msg, NULL) == NATS_OK)
		atomic_fetch_add(&p->resent, 1);
}

int bench_pub_open(bench_pub *p, const char *url, long pending, const char *name)
{
	char err[256] = "";
	memset(p, 0, sizeof(*p));
	atomic_init(&p->failed, 0);
	atomic_init(&p->resent, 0);
	vox_nats_opts no = {.url = url, .name = name, .timeout_ms = 5000};
	vox_status st = vox_nats_connect(&p->nc, &no, err, sizeof(err));
	if (st != VOX_OK) {
		fprintf(stderr, "vox-bench: nats: %s\n", err);
		return st == VOX_E_CONFIG || st == VOX_E_INVALID ? 2 : 3;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	jo.PublishAsync.MaxPending = pending;
	jo.PublishAsync.StallWait = 1000;
	jo.PublishAsync.ErrHandler = on_pub_err;
	jo.PublishAsync.ErrHandlerClosure = p;
	if (natsConnection_JetStream(&p->js, p->nc, &jo) != NATS_OK) {
		fprintf(stderr, "vox-bench: jetstream: %s\n", nats_GetLastError(NULL));
		return 3;
	}
	return 0;
}

void bench_pub_close(bench_pub *p)
{
	jsCtx_Destroy(p->js);
	p->js = NULL;
	if (p->nc) {
		natsStatus s = natsConnection_FlushTimeout(p->nc, 2000);
		VOX_UNUSED(s);
	}
	natsConnection_Destroy(p->nc);
	p->nc = NULL;
}

bool bench_pub_msg(bench_pub *p, natsMsg **m)
{
	for (int tries = 0; tries < 300; tries++) {
		natsStatus s = js_PublishMsgAsync(p->js, m, NULL);
		if (s == NATS_OK)
			return true;
		if (s != NATS_TIMEOUT) {
			fprintf(stderr, "vox-bench: publish: %s\n", natsStatus_GetText(s));
			break;
		}
	}
	natsMsg_Destroy(*m);
	*m = NULL;
	return false;
}

bool bench_pub_event(bench_pub *p, const vox_event *ev)
{
	natsMsg *m = NULL;
	vox_error err;
	if (vox_event_to_msg(&m, ev, &err) != VOX_OK) {
		fprintf(stderr, "vox-bench: event refused: %s\n", err.message);
		return false;
	}
	return bench_pub_msg(p, &m);
}

bool bench_pub_complete(bench_pub *p)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	natsStatus s = js_PublishAsyncComplete(p->js, &po);
	if (s != NATS_OK) {
		fprintf(stderr, "vox-bench: publish complete: %s\n", natsStatus_GetText(s));
		return false;
	}
	return true;
}

bool bench_publish_calls(bench_pub *p, const bench_run *run, long from,
			 long to, long orgs, long rate, int64_t t0_ns,
			 int64_t w0_us, int64_t *pub_us, long sample)
{
	int64_t now_s = bench_wall_us() / 1000000;
	for (long i = from; i < to; i++) {
		bench_call c;
		vox_event ev;
		int64_t due = rate > 0 ? t0_ns + (int64_t)(i - from) * NS_PER_S / rate : 0;
		if (rate > 0)
			bench_sleep_until(due);
		bench_call_ids(&c, run, i, orgs);
		bench_build_started(&ev, &c, now_s);
		if (!bench_pub_event(p, &ev))
			return false;
		bench_build_ended(&ev, &c, i, now_s);
		if (pub_us && i % sample == 0)
			pub_us[i / sample] = rate > 0 ? w0_us + (due - t0_ns) / 1000
						      : bench_wall_us();
		if (!bench_pub_event(p, &ev))
			return false;
	}
	return true;
}
