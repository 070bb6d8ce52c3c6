// A dashboard's questions: the wallet and the latest calls of an org.
// usage: node dist/examples/dashboard.js <org_id>
import { VoxError, calls, connectEnv, wallet } from "../src/index.js";

const [org] = process.argv.slice(2);
if (!org) {
  console.error("usage: dashboard <org_id>");
  process.exit(2);
}
const nc = await connectEnv("dashboard");
try {
  const w = await wallet(nc, org);
  console.log(`balance ${w.balance_pence}p, ${w.minutes_remaining} minutes left` +
              (w.in_debt ? " (in debt)" : ""));
  const page = await calls(nc, org, { limit: 10 });
  for (const c of page.items) console.log(`${c.created_at} ${c.status} ${c.duration_seconds ?? "-"}s`);
} catch (e) {
  if (e instanceof VoxError) {
    console.error(`${e.code} ${e.reason}${e.field ? " (" + e.field + ")" : ""}: ${e.message}`);
    process.exitCode = e.code === 404 ? 1 : 2;
  } else throw e;
} finally {
  await nc.drain();
}
