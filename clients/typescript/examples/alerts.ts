// An alert consumer: a durable consumer on ALERTS, one JSON line an alert.
// usage: node dist/examples/alerts.js <durable> [filter, e.g. alert.hot_lead.*]
import { connectEnv, followAlerts } from "../src/index.js";

const [durable, filter] = process.argv.slice(2);
if (!durable) {
  console.error("usage: alerts <durable> [filter]");
  process.exit(2);
}
const nc = await connectEnv("alerts");
const stop = await followAlerts(nc, { durable, filter }, (a) => {
  console.log(JSON.stringify({ kind: a.kind, subject: a.subject, alert: a.alert }));
});
process.on("SIGINT", async () => {
  await stop();
  await nc.drain();
});
