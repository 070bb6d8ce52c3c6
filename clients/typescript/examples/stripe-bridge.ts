// A payments bridge shaped like a Stripe webhook endpoint: POST /webhook
// with a Stripe event; a payment_intent.succeeded becomes
// payment.succeeded for the org in the intent's metadata.org_id. The
// Stripe-Signature header is checked (HMAC-SHA256 of "<t>.<body>" with
// STRIPE_WEBHOOK_SECRET, at most 5 minutes old) before anything is
// published; the event's id is the event_id, so Stripe's retries are
// duplicates. Answers 200 once JetStream stored the event (Stripe retries
// anything else), 400 for a bad signature or body.
// usage: STRIPE_WEBHOOK_SECRET=whsec_... node dist/examples/stripe-bridge.js [addr, default 127.0.0.1:8787]
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { jetstream } from "@nats-io/jetstream";
import { connectEnv, publishEvent } from "../src/index.js";

const secret = process.env.STRIPE_WEBHOOK_SECRET;
if (!secret) {
  console.error("stripe-bridge: set STRIPE_WEBHOOK_SECRET");
  process.exit(2);
}
const addr = process.argv[2] ?? "127.0.0.1:8787";
const colon = addr.lastIndexOf(":");
const host = addr.slice(0, colon), port = Number(addr.slice(colon + 1));
const nc = await connectEnv("stripe-bridge");
const js = jetstream(nc);

function signed(header: string | undefined, body: string): boolean {
  const parts = Object.fromEntries((header ?? "").split(",").map((p) => p.split("=", 2)));
  const t = Number(parts.t);
  if (!parts.v1 || !Number.isFinite(t) || Math.abs(Date.now() / 1000 - t) > 300) return false;
  const want = createHmac("sha256", secret!).update(`${parts.t}.${body}`).digest();
  const got = Buffer.from(parts.v1, "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", async () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const answer = (code: number, text: string) => {
      res.writeHead(code, { "content-type": "text/plain" }).end(text + "\n");
    };
    if (req.method !== "POST" || req.url !== "/webhook") return answer(404, "POST /webhook");
    if (!signed(req.headers["stripe-signature"] as string | undefined, body))
      return answer(400, "bad signature");
    let ev;
    try {
      ev = JSON.parse(body);
    } catch {
      return answer(400, "not JSON");
    }
    if (ev.type !== "payment_intent.succeeded") return answer(200, "ignored " + ev.type);
    const pi = ev.data?.object ?? {};
    try {
      const ack = await publishEvent(js, "payment.succeeded", {
        event_id: String(ev.id), org_id: String(pi.metadata?.org_id),
        stripe_payment_intent_id: String(pi.id), amount_pence: Number(pi.amount_received ?? pi.amount),
        description: pi.description ?? undefined, occurred_at: new Date(Number(ev.created) * 1000),
      });
      answer(200, `stored seq=${ack.seq} duplicate=${ack.duplicate}`);
    } catch (e) {
      answer(503, "not stored: " + String(e)); // Stripe retries
    }
  });
});
server.listen(port, host, () => console.log(`stripe-bridge listening on ${addr}`));
const stop = async () => {
  server.close();
  await nc.drain();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
