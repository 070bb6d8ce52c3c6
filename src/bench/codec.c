/*
 * codec.c - vox-bench codec: the cost of decoding+validating and of
 * encoding each message kind, for a realistic message.
 *
 *   vox-bench codec [--iterations N]
 */
#include "bench/bench.h"

#define ORG "3f0c2a4e-8b1d-4c5e-9f6a-7b8c9d0e1f2a"
#define CALL "9b2e4c6a-1d3f-4a5b-8c7d-6e5f4a3b2c1d"
#define STR(s) ((vox_str){s, sizeof(s) - 1})

static void sample(vox_event *ev, vox_event_kind kind)
{
	vox_time t = {1795000000, 123000000, true};
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	switch (kind) {
	case VOX_CALL_STARTED: {
		vox_call_started *e = &ev->u.call_started;
		e->event_id = STR("vapi_msg_01HV8Z3K4M5N6P7Q8R9S0T1U2V");
		memcpy(e->org_id.s, ORG, 37);
		memcpy(e->call_id.s, CALL, 37);
		e->vapi_call_id = STR("call_7f3a9c1e2b4d");
		e->direction = VOX_DIR_INBOUND;
		e->from_number = STR("+447700900123");
		e->to_number = STR("+442071838750");
		e->caller_name = STR("Priya Shah");
		e->started_at = t;
		break;
	}
	case VOX_CALL_ENDED: {
		vox_call_ended *e = &ev->u.call_ended;
		e->event_id = STR("vapi_msg_01HV8Z3K4M5N6P7Q8R9S0T1U2W");
		memcpy(e->org_id.s, ORG, 37);
		memcpy(e->call_id.s, CALL, 37);
		e->ended_at = t;
		e->duration_seconds = 187;
		e->status = VOX_CALL_COMPLETED;
		e->direction = VOX_DIR_INBOUND;
		e->from_number = STR("+447700900123");
		e->to_number = STR("+442071838750");
		e->started_at = (vox_time){1794999813, 0, true};
		e->transcript = (vox_str){bench_transcript, strlen(bench_transcript)};
		e->summary = STR("New patient booked a check-up Tuesday 2:30pm;"
				 " asked about whitening.");
		e->recording_url = STR("https://recordings.example/7f3a9c1e2b4d.wav");
		e->sentiment_label = VOX_SENTIMENT_POSITIVE;
		e->has_sentiment_score = true;
		e->sentiment_score = 0.82;
		e->sentiment_urgency = VOX_URGENCY_LOW;
		break;
	}
	case VOX_PAYMENT_SUCCEEDED: {
		vox_payment_succeeded *e = &ev->u.payment_succeeded;
		e->event_id = STR("evt_1PqR2sT3uV4wX5yZ");
		memcpy(e->org_id.s, ORG, 37);
		e->stripe_payment_intent_id = STR("pi_3PqR2sT3uV4wX5yZ0a1b2c3d");
		e->amount_pence = 5000;
		e->description = STR("Wallet top-up");
		e->occurred_at = t;
		break;
	}
	case VOX_PAYMENT_REFUNDED: {
		vox_payment_refunded *e = &ev->u.payment_refunded;
		e->event_id = STR("evt_1PqR2sT3uV4wX5yA");
		memcpy(e->org_id.s, ORG, 37);
		e->stripe_refund_id = STR("re_3PqR2sT3uV4wX5yZ0a1b2c3d");
		e->stripe_payment_intent_id = STR("pi_3PqR2sT3uV4wX5yZ0a1b2c3d");
		e->amount_pence = 1500;
		e->occurred_at = t;
		break;
	}
	case VOX_LEAD_SCORED: {
		vox_lead_scored *e = &ev->u.lead_scored;
		e->event_id = STR("score_01HV8Z3K4M5N6P7Q8R9S0T1U2X");
		memcpy(e->org_id.s, ORG, 37);
		e->phone = STR("+447700900123");
		memcpy(e->call_id.s, CALL, 37);
		e->lead_score = 86;
		e->lead_name = STR("Priya Shah");
		e->service_interest = STR("whitening");
		e->summary = STR("New patient, interested in cosmetic work.");
		e->scored_at = t;
		break;
	}
	case VOX_ALERT_HOT_LEAD: {
		vox_alert_hot_lead *e = &ev->u.hot_lead;
		memcpy(e->alert_id.s, "0d7c1b2a-3e4f-4a5b-9c8d-7e6f5a4b3c2d", 37);
		memcpy(e->org_id.s, ORG, 37);
		memcpy(e->contact_id.s, "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", 37);
		memcpy(e->call_id.s, CALL, 37);
		e->lead_name = STR("Priya Shah");
		e->lead_phone = STR("+447700900123");
		e->lead_score = 86;
		e->urgency_level = VOX_URGENCY_HIGH;
		e->created_at = t;
		break;
	}
	default: {
		vox_alert_wallet *e = &ev->u.wallet;
		memcpy(e->alert_id.s, "0d7c1b2a-3e4f-4a5b-9c8d-7e6f5a4b3c2e", 37);
		memcpy(e->org_id.s, ORG, 37);
		e->balance_pence = -120;
		e->debt_limit_pence = 500;
		e->amount_pence = 200;
		memcpy(e->call_id.s, CALL, 37);
		e->created_at = t;
		break;
	}
	}
}

static int run_codec(long iterations)
{
	for (int k = 0; k < VOX_EVENT_KIND_COUNT; k++) {
		vox_event ev, out;
		vox_error err;
		unsigned char *buf = NULL;
		size_t len = 0;
		sample(&ev, (vox_event_kind)k);
		if (vox_event_encode(&buf, &len, &ev, &err) != VOX_OK) {
			fprintf(stderr, "vox-bench: %s\n", err.message);
			return 1;
		}
		int64_t t0 = bench_now_ns();
		long sink = 0;
		for (long i = 0; i < iterations; i++) {
			if (vox_event_decode(&out, (vox_event_kind)k, buf, len, &err) != VOX_OK)
				return 1;
			sink += (long)out.kind;
		}
		int64_t t1 = bench_now_ns();
		for (long i = 0; i < iterations / 4; i++) {
			unsigned char *b = NULL;
			size_t n = 0;
			if (vox_event_encode(&b, &n, &ev, &err) != VOX_OK)
				return 1;
			sink += (long)n;
			free(b);
		}
		int64_t t2 = bench_now_ns();
		printf("{\"scenario\":\"codec\",\"kind\":\"%s\",\"bytes\":%zu,"
		       "\"iterations\":%ld,\"decode_ns\":%.1f,"
		       "\"encode_ns\":%.1f,\"sink\":%ld}\n",
		       vox_event_kind_name((vox_event_kind)k), len, iterations,
		       (double)(t1 - t0) / (double)iterations,
		       (double)(t2 - t1) / (double)(iterations / 4), sink);
		free(buf);
	}
	return 0;
}

int bench_codec_main(int argc, char **argv)
{
	long iterations = 200000;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc &&
		    bench_parse_long(&iterations, argv[i + 1], 4, 1000000000L)) {
			i++;
		} else {
			fprintf(stderr, "usage: vox-bench codec [--iterations N]\n");
			return 2;
		}
	}
	return run_codec(iterations);
}
