// A telephony bridge: one call (call.started, then call.ended) for an org.
// usage: node dist/examples/call-bridge.js <org_id> [seconds]
import { randomUUID } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { connectEnv, publishEvent } from "../src/index.js";

const [org, seconds = "187"] = process.argv.slice(2);
if (!org) {
  console.error("usage: call-bridge <org_id> [seconds]");
  process.exit(2);
}
const nc = await connectEnv("call-bridge");
const js = jetstream(nc);
const callId = randomUUID();
const duration = Number(seconds);
const startedAt = new Date(Date.now() - duration * 1000);
console.log("call_id=" + callId);
for (const [kind, ev] of [
  ["call.started", { event_id: `bridge-${callId}-started`, org_id: org, call_id: callId,
                     direction: "inbound", from_number: "+447700900123",
                     to_number: "+442071838750", started_at: startedAt }],
  ["call.ended", { event_id: `bridge-${callId}-ended`, org_id: org, call_id: callId,
                   ended_at: new Date(), duration_seconds: duration, status: "completed",
                   started_at: startedAt }],
] as const) {
  const ack = await publishEvent(js, kind, ev as never);
  console.log(`${kind} stream=${ack.stream} seq=${ack.seq} duplicate=${ack.duplicate}`);
}
await nc.drain();
