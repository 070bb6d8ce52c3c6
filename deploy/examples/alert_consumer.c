/*
 * alert_consumer.c - an example alert consumer in C: follows alert.hot_lead
 * on the ALERTS stream with a durable pull consumer and prints each alert
 * once, as one JSON line, using only include/vox/ and libnats. Because the
 * consumer is durable and every alert is acknowledged after it is printed,
 * a consumer that was down catches up on what it missed, and an alert
 * that was printed is not printed again.
 *
 *   VOX_NATS_URL=nats://127.0.0.1:4222 vox-example-alerts \
 *       [--durable NAME] [--org ORG_ID] [--count N] [--idle-ms MS]
 *
 * --count stops after N alerts, --idle-ms after MS without one (both for
 * scripts); otherwise it runs until Ctrl-C.
 *
 * Against deploy/nats/accounts.conf it runs as the alerts user
 * (VOX_NATS_USER=alerts VOX_NATS_PASSWORD=...) through a durable consumer
 * an operator created; the consumer delivers to this client's inbox, which
 * only that user may read (vox_connect_env sets its prefix).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "vox/client.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long arg_long(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return *end ? -1 : v;
}

int main(int argc, char **argv)
{
	const char *durable = "alert-printer";
	const char *org = "*";
	long count = -1, idle_ms = -1;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--durable") == 0)
			durable = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--org") == 0)
			org = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--count") == 0)
			count = arg_long(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--idle-ms") == 0)
			idle_ms = arg_long(argv[++i]);
		else {
			fprintf(stderr, "usage: vox-example-alerts [--durable NAME]"
				" [--org ORG_ID] [--count N] [--idle-ms MS]\n");
			return 2;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	char filter[128], why[256];
	long printed = 0, idle = 0;
	int rc = 3;

	snprintf(filter, sizeof(filter), "%s.%s",
		 vox_event_kind_name(VOX_ALERT_HOT_LEAD), org);
	jsSubOptions_Init(&so);
	so.Stream = VOX_STREAM_ALERTS;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.DeliverPolicy = js_DeliverAll;
	if (vox_connect_env(&nc, "vox-example-alerts", why, sizeof(why)) != VOX_OK) {
		fprintf(stderr, "alerts: cannot reach NATS: %s\n", why);
		goto out;
	}
	if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
	    js_PullSubscribe(&sub, js, filter, durable, NULL, &so, NULL) != NATS_OK) {
		fprintf(stderr, "alerts: cannot reach NATS or the ALERTS stream: %s\n",
			nats_GetLastError(NULL));
		goto out;
	}
	rc = 0;
	while (!stop && (count < 0 || printed < count) &&
	       (idle_ms < 0 || idle < idle_ms)) {
		natsMsgList list = {0};
		natsStatus s = natsSubscription_Fetch(&list, sub, 64, 500, NULL);
		if (s != NATS_OK || list.Count == 0) {
			idle += 500;
			natsMsgList_Destroy(&list);
			continue;
		}
		idle = 0;
		for (int i = 0; i < list.Count; i++) {
			natsMsg *m = list.Msgs[i];
			vox_event ev;
			vox_error err;
			if (vox_event_decode_subject(&ev, natsMsg_GetSubject(m),
						     natsMsg_GetData(m),
						     (size_t)natsMsg_GetDataLength(m),
						     &err) != VOX_OK) {
				fprintf(stderr, "alerts: skipping %s: %s\n",
					natsMsg_GetSubject(m), err.message);
				natsMsg_Term(m, NULL);
				continue;
			}
			char *json = vox_event_to_json(&ev);
			printf("%s\n", json);
			fflush(stdout);
			free(json);
			/* acknowledged once printed: never printed twice */
			natsMsg_AckSync(m, NULL, NULL);
			printed++;
		}
		natsMsgList_Destroy(&list);
	}
out:
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return rc;
}
