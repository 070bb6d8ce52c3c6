// The kit against the running actors (VOX_NATS_URL; voxctl from VOX_BIN
// creates the org) and the contract's JSON vectors (VOX_SOURCE_DIR).
// tests/integration/test_kits.sh starts the actors and runs this.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { Ajv2020 } from "ajv/dist/2020.js";
import formats from "ajv-formats";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import * as vox from "../src/index.js";

const env = (k: string) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
let nc: NatsConnection;

// Live replies against the contract's reply schemas (subjects/schema):
// the JSON form, where a Date is RFC 3339 text and bytes are base64.
const ajv = new Ajv2020({ strict: true, strictRequired: false });
// ajv-formats is CommonJS: its default export is the module object here
(formats as unknown as { default: (a: Ajv2020) => void }).default(ajv);
function jsonForm(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (Array.isArray(v)) return v.map(jsonForm);
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonForm(x)]));
  return v;
}
let checked = 0;
function conforms(subject: string, reply: unknown) {
  const path = join(env("VOX_SOURCE_DIR"), "subjects", "schema", `${subject}.reply.json`);
  const schema = JSON.parse(readFileSync(path, "utf8"));
  const validate = ajv.getSchema(schema.$id) ?? ajv.compile(schema);
  assert.ok(validate(jsonForm(reply)), `${subject}: ${ajv.errorsText(validate.errors)}`);
  checked++;
}
const org = randomUUID();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// poll f until it returns a value ok accepts (about 20 s)
async function eventually<T>(f: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < 200; i++) {
    try {
      last = await f();
      if (ok(last)) return last;
    } catch (e) {
      if (!(e instanceof vox.VoxError)) throw e;
    }
    await sleep(100);
  }
  assert.fail(`never reached: last ${JSON.stringify(last)}`);
}

before(async () => {
  nc = await connect({ servers: env("VOX_NATS_URL") });
  execFileSync(join(env("VOX_BIN"), "voxctl"),
               ["org", "create", "--id", org, "--name", "TS Clinic", "--email", "ts@example.com",
                "--balance", "1000", "--low-balance", "0"], { stdio: "pipe" });
});
after(async () => {
  await nc?.drain();
});

test("a published call is charged once, its replay is a duplicate", async () => {
  const js = jetstream(nc);
  const callId = randomUUID();
  const started = new Date(Date.now() - 120_000);
  const a = await vox.publishEvent(js, "call.started", {
    event_id: `ts-${callId}-s`, org_id: org, call_id: callId, direction: "inbound",
    from_number: "+447700900123", to_number: "+442071838750", started_at: started,
  });
  assert.equal(a.stream, "EVENTS");
  assert.equal(a.duplicate, false);
  const ended = {
    event_id: `ts-${callId}-e`, org_id: org, call_id: callId, ended_at: new Date(),
    duration_seconds: 120, status: "completed" as const, started_at: started,
  };
  assert.equal((await vox.publishEvent(js, "call.ended", ended)).duplicate, false);
  assert.equal((await vox.publishEvent(js, "call.ended", ended)).duplicate, true);
  // 120 s at 70p a minute: 140p
  const w = await eventually(() => vox.wallet(nc, org), (w) => w.balance_pence === 860);
  assert.equal(w.in_debt, false);
  // vox-calls writes the call row on its own time
  const page = await eventually(() => vox.calls(nc, org, { limit: 5 }),
                                (p) => p.items.length === 1 && p.items[0].status === "completed");
  assert.equal(page.items[0].id, callId);
  const one = await vox.call(nc, org, callId);
  assert.equal(one.duration_seconds, 120);
  const auth = await vox.authorize(nc, org, {});
  assert.equal(auth.allowed, true);
  conforms("query.wallet", w);
  conforms("query.calls", page);
  conforms("query.call", one);
  conforms("billing.authorize", auth);
  conforms("query.transactions", await vox.transactions(nc, org, { limit: 5 }));
  // a hold for the next call: placed once, listed, counted
  const next = randomUUID();
  const held = await vox.authorize(nc, org, { call_id: next, hold: true });
  assert.equal(held.hold, "placed");
  assert.equal((await vox.authorize(nc, org, { call_id: next, hold: true })).hold, "active");
  conforms("billing.authorize", held);
  const hs = await vox.holds(nc, org);
  assert.equal(hs.items.length, 1);
  assert.equal(hs.items[0].call_id, next);
  assert.equal(hs.items[0].amount_pence, held.held_pence);
  conforms("query.holds", hs);
  assert.equal((await vox.wallet(nc, org)).held_pence, held.held_pence);
});

test("a hot lead arrives through a durable alert consumer", async () => {
  const js = jetstream(nc);
  const seen: vox.Alert[] = [];
  const stop = await vox.followAlerts(nc, { durable: `ts-${org.slice(0, 8)}`,
                                            filter: `alert.hot_lead.${org}` },
                                      (a) => { seen.push(a); });
  await vox.publishEvent(js, "lead.scored", {
    event_id: `ts-lead-${randomUUID()}`, org_id: org, phone: "+447700900999",
    lead_score: 91, lead_name: "Priya Shah", scored_at: new Date(),
  });
  await eventually(async () => seen.length, (n) => n >= 1);
  await stop();
  const a = seen[0];
  assert.equal(a.kind, "alert.hot_lead");
  if (a.kind !== "alert.hot_lead") return;
  assert.equal(a.alert.org_id, org);
  assert.equal(a.alert.lead_score, 91);
  assert.ok(a.alert.created_at instanceof Date);
  const leads = await vox.hotLeads(nc, org, { limit: 5 });
  assert.equal(leads.items.length, 1);
  conforms("query.hot_leads", leads);
  conforms("query.contact", await vox.contact(nc, org, { phone: "+447700900999" }));
});

test("a credential comes back sealed to a one-time key and opened", async () => {
  conforms("credentials.put",
           await vox.putCredential(nc, org, { provider: "twilio", config: '{"token":"tok-ts-1"}' }));
  const secret = await vox.getCredential(nc, org, { provider: "twilio" });
  assert.equal(new TextDecoder().decode(secret), '{"token":"tok-ts-1"}');
  const list = await vox.listCredentials(nc, org);
  assert.ok(JSON.stringify(list).includes("twilio"));
  conforms("credentials.list", list);
  conforms("credentials.get", await vox.request(nc, `credentials.get.${org}`, {
    provider: "twilio", reply_key: new Uint8Array(32).fill(9) }));
  conforms("credentials.delete", await vox.deleteCredential(nc, org, { provider: "stripe" }));
  assert.ok(checked >= 13, `${checked} replies checked`);
});

test("each error reply is a VoxError with its code, reason and field", async () => {
  const cases: [() => Promise<unknown>, number, string, string][] = [
    [() => vox.calls(nc, org, { limit: 1000 }), 400, "out_of_range", "limit"],
    [() => vox.wallet(nc, randomUUID()), 404, "unknown_org", ""],
    [() => vox.request(nc, `query.wallet.not-a-uuid`), 400, "bad_uuid", ""],
    [() => vox.call(nc, org, randomUUID()), 404, "not_found", ""],
    [() => vox.getCredential(nc, org, { provider: "nope" }), 400, "bad_enum", "provider"],
    [() => vox.request(nc, `billing.authorize.${org}`, { call_id: "x" }), 400, "bad_uuid", "call_id"],
  ];
  for (const [f, code, reason, field] of cases) {
    const e = await f().then(() => null, (e: unknown) => e);
    assert.ok(e instanceof vox.VoxError, `no VoxError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.reason, reason, e.message);
    if (field) assert.equal(e.field, field, e.message);
  }
});

test("every valid JSON vector decodes to its JSON", () => {
  const dir = join(env("VOX_SOURCE_DIR"), "subjects", "vectors", "json");
  let valid = 0;
  for (const f of readdirSync(dir)) {
    const doc = JSON.parse(readFileSync(join(dir, f), "utf8"));
    if (doc.format !== "vox-vectors/1") continue; // requests.json: checked by vox itself
    for (const c of doc.cases) {
      if (c.error) continue;
      const got = vox.decodePayload(new Uint8Array(Buffer.from(c.hex, "hex"))) as Record<string, unknown>;
      for (const [k, want] of Object.entries(c.json as Record<string, unknown>)) {
        let v = got[k];
        // what vox's decoder normalizes, this plain msgpack decode does not:
        // UUIDs are lowercased, integer milliseconds are a timestamp
        if (typeof v === "string" && /^[0-9a-f-]{36}$/i.test(v) && typeof want === "string")
          v = v.toLowerCase();
        if (typeof v === "number" && typeof want === "string" && /^\d{4}-\d\d-\d\dT/.test(want))
          v = new Date(v);
        if (v instanceof Date) // the vector keeps nanoseconds, a Date milliseconds
          assert.equal(v.toISOString().slice(0, 23), String(want).slice(0, 23), `${c.name}: ${k}`);
        else if (typeof v === "number" && typeof want === "number" && Number.isSafeInteger(want))
          assert.ok(v === want, `${c.name}: ${k}: ${v} != ${want}`); // -0 === 0
        else if (typeof v === "number" && typeof want === "number" && !Number.isInteger(want))
          assert.ok(Math.abs(v - want) < 1e-12, `${c.name}: ${k}`);
        else if (typeof v === "bigint" || (typeof v === "number" && !Number.isSafeInteger(v)))
          assert.equal(Number(v), Number(want), `${c.name}: ${k}`);
        else
          assert.deepEqual(v, want, `${c.name}: ${k}`);
      }
      valid++;
    }
  }
  assert.ok(valid > 800, `${valid} valid vectors`);
});

test("every error-reply vector is read as its error", () => {
  const path = join(env("VOX_SOURCE_DIR"), "subjects", "vectors", "json", "error_replies.json");
  const doc = JSON.parse(readFileSync(path, "utf8"));
  for (const c of doc.cases) {
    const e = vox.errorFromHeaders("query.x", (k) => c.headers[k] ?? "");
    if (!c.error) {
      assert.equal(e, null, c.name);
      continue;
    }
    assert.ok(e, c.name);
    assert.deepEqual({ code: e.code, reason: e.reason, field: e.field, message: e.message },
                     { ...c.error, message: `query.x: ${c.error.code} ${c.error.message}` },
                     c.name);
  }
  assert.ok(doc.cases.length >= 5);
});

// The JSON form of a decoded value, to compare with a vector's JSON:
// Dates as RFC 3339 with nine digits (a Date has three), the rest as is.
function canonical(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString().replace("Z", "000000Z");
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, canonical(x)]));
  return v;
}

test("every reply vector decodes to its JSON", () => {
  const path = join(env("VOX_SOURCE_DIR"), "subjects", "vectors", "json", "replies.json");
  const doc = JSON.parse(readFileSync(path, "utf8"));
  for (const c of doc.cases) {
    const got = canonical(vox.decodePayload(new Uint8Array(Buffer.from(c.hex, "hex"))));
    // a Date keeps milliseconds: compare the vector's time to them
    const want = JSON.parse(JSON.stringify(c.json), (_k, v) =>
      typeof v === "string" && /^\d{4}-\d\d-\d\dT.*\.\d{9}Z$/.test(v)
        ? v.slice(0, 23) + "000000Z" : v);
    assert.deepEqual(got, want, c.name);
    conforms(c.subject, vox.decodePayload(new Uint8Array(Buffer.from(c.hex, "hex"))));
  }
  assert.ok(doc.cases.length >= 5);
});
