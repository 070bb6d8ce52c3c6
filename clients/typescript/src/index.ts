// @vox/client: vox's contract for TypeScript (subjects/ in the vox tree).
//
// Events are msgpack maps published to JetStream on <kind>.<org_id> with
// Nats-Msg-Id = event_id (JetStream's duplicate filter; vox is idempotent
// by the event's own keys beyond it) and Vox-Schema: 1. Timestamps are
// JavaScript Dates, sent as msgpack timestamps (ext -1); vox keeps
// nanoseconds, a Date keeps milliseconds. Integers are numbers: amounts
// beyond 2^53 pence are not exact in JavaScript.
//
// Requests (query.*, billing.authorize, credentials.*) are NATS requests
// with msgpack bodies; an error reply (the services protocol's
// Nats-Service-Error headers, with vox's Vox-Error-Reason and
// Vox-Error-Field) is thrown as a VoxError.
import {
  decode, decodeTimestampToTimeSpec, encode, encodeTimestampExtension, EXT_TIMESTAMP,
  ExtensionCodec,
} from "@msgpack/msgpack";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { connect, headers } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import sodium from "libsodium-wrappers";

export const SCHEMA_VERSION = "1";

// ---- events ---------------------------------------------------------------

export type Direction = "inbound" | "outbound";

export interface CallStarted {
  event_id: string;
  org_id: string;
  call_id: string;
  vapi_call_id?: string;
  direction: Direction;
  from_number: string;
  to_number: string;
  caller_name?: string;
  contact_id?: string;
  started_at: Date;
}

export interface CallEnded {
  event_id: string;
  org_id: string;
  call_id: string;
  ended_at: Date;
  duration_seconds: number;
  status: "completed" | "failed";
  direction?: Direction;
  from_number?: string;
  to_number?: string;
  started_at?: Date;
  transcript?: string;
  summary?: string;
  recording_url?: string;
  sentiment_summary?: string;
  sentiment_label?: "positive" | "neutral" | "negative";
  sentiment_score?: number;
  sentiment_urgency?: Urgency;
}

export interface PaymentSucceeded {
  event_id: string;
  org_id: string;
  stripe_payment_intent_id: string;
  amount_pence: number;
  description?: string;
  occurred_at: Date;
}

export interface PaymentRefunded {
  event_id: string;
  org_id: string;
  stripe_refund_id: string;
  stripe_payment_intent_id: string;
  amount_pence: number;
  occurred_at: Date;
}

export interface LeadScored {
  event_id: string;
  org_id: string;
  contact_id?: string;
  phone?: string;
  call_id?: string;
  lead_score: number;
  lead_status?: "hot" | "warm" | "cold" | "contacted";
  lead_name?: string;
  service_interest?: string;
  summary?: string;
  scored_at: Date;
}

export interface EventKinds {
  "call.started": CallStarted;
  "call.ended": CallEnded;
  "payment.succeeded": PaymentSucceeded;
  "payment.refunded": PaymentRefunded;
  "lead.scored": LeadScored;
}
export type EventKind = keyof EventKinds;
export const EVENT_KINDS: EventKind[] = [
  "call.started", "call.ended", "payment.succeeded", "payment.refunded", "lead.scored",
];

// ---- alerts ---------------------------------------------------------------

export type Urgency = "low" | "medium" | "high" | "critical";

export interface HotLeadAlert {
  alert_id: string;
  org_id: string;
  contact_id: string;
  call_id?: string;
  lead_name?: string;
  lead_phone?: string;
  lead_score: number;
  urgency_level: Urgency;
  service_interest?: string;
  summary?: string;
  created_at: Date;
}

export interface WalletAlert {
  alert_id: string;
  org_id: string;
  balance_pence: number;
  debt_limit_pence: number;
  threshold_pence?: number; // alert.low_balance
  shortfall_pence?: number; // alert.debt_limit
  call_id?: string;
  created_at: Date;
}

export type Alert =
  | { kind: "alert.hot_lead"; subject: string; alert: HotLeadAlert }
  | { kind: "alert.low_balance" | "alert.debt_limit"; subject: string; alert: WalletAlert }
  | { kind: "unknown"; subject: string; alert: Record<string, unknown> };

// ---- errors ---------------------------------------------------------------

/** An error reply: the HTTP-like code, vox's stable reason and field. */
export class VoxError extends Error {
  constructor(
    readonly subject: string,
    readonly code: number,
    readonly reason: string,
    readonly field: string,
    message: string,
  ) {
    super(`${subject}: ${code} ${message}`);
    this.name = "VoxError";
  }
}

// ---- msgpack --------------------------------------------------------------

// Timestamps: a Date out, a Date in, its milliseconds truncated (never
// rounded up into the next second: 23:59:59.9999 stays in its day).
const codec = new ExtensionCodec();
codec.register({
  type: EXT_TIMESTAMP,
  encode: (v: unknown) => (v instanceof Date ? encodeTimestampExtension(v) : null),
  decode: (data: Uint8Array) => {
    const t = decodeTimestampToTimeSpec(data);
    return new Date(t.sec * 1000 + Math.floor(t.nsec / 1e6));
  },
});

/** The msgpack bytes of a payload (Dates become timestamps). */
export function encodePayload(value: object): Uint8Array {
  return encode(value, { extensionCodec: codec });
}

/** A msgpack payload decoded (timestamps become Dates). */
export function decodePayload<T = Record<string, unknown>>(data: Uint8Array): T {
  return decode(data, { extensionCodec: codec }) as T;
}

// ---- connecting -----------------------------------------------------------

/** A NATS connection to VOX_NATS_URL (default nats://127.0.0.1:4222), as
 * vox's own programs make it. */
export function connectEnv(name?: string): Promise<NatsConnection> {
  return connect({ servers: process.env.VOX_NATS_URL ?? "nats://127.0.0.1:4222", name });
}

// ---- publishing -----------------------------------------------------------

export interface Published {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/**
 * Publish an event to JetStream on <kind>.<org_id>, with Nats-Msg-Id =
 * event_id and Vox-Schema: 1. Resolves with JetStream's ack once the
 * event is stored; rejects when it is not (no stream, no JetStream).
 */
export async function publishEvent<K extends EventKind>(
  js: JetStreamClient,
  kind: K,
  event: EventKinds[K],
  timeoutMs = 5000,
): Promise<Published> {
  if (!EVENT_KINDS.includes(kind)) throw new TypeError(`not an event kind: ${kind}`);
  if (!event.event_id || !event.org_id) throw new TypeError("event_id and org_id are required");
  const h = headers();
  h.set("Vox-Schema", SCHEMA_VERSION);
  const ack: PubAck = await js.publish(`${kind}.${event.org_id}`, encodePayload(event), {
    msgID: event.event_id,
    headers: h,
    timeout: timeoutMs,
  });
  return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
}

// ---- requests -------------------------------------------------------------

/** Send one request and decode its reply; an error reply throws VoxError. */
export async function request<T = Record<string, unknown>>(
  nc: NatsConnection,
  subject: string,
  body: object = {},
  timeoutMs = 5000,
): Promise<T> {
  const reply = await nc.request(subject, encodePayload(body), { timeout: timeoutMs });
  const h = reply.headers;
  const e = h ? errorFromHeaders(subject, (k) => h.get(k)) : null;
  if (e) throw e;
  return decodePayload<T>(reply.data);
}

/** The error a reply's headers carry, or null for a success (no
 * Nats-Service-Error-Code). get returns "" for a header not there. */
export function errorFromHeaders(subject: string, get: (key: string) => string): VoxError | null {
  const code = get("Nats-Service-Error-Code");
  if (!code) return null;
  return new VoxError(subject, Number(code), get("Vox-Error-Reason") || "",
                      get("Vox-Error-Field") || "", get("Nats-Service-Error") || "");
}

export interface Wallet {
  balance_pence: number;
  debt_limit_pence: number;
  available_pence: number;
  unbilled_pence: number;
  low_balance_pence: number;
  rate_per_minute: number;
  minutes_remaining: number;
  in_debt: boolean;
  held_pence: number; // active holds of calls in progress
}

export interface Page<T> {
  items: T[];
  next?: string | null; // null on the last page; absent for hot_leads
}

export interface CallsQuery {
  limit?: number;
  before?: string;
  status?: "pending" | "in_progress" | "completed" | "failed";
  direction?: Direction;
  since?: Date;
  until?: Date;
}

export const wallet = (nc: NatsConnection, org: string) =>
  request<Wallet>(nc, `query.wallet.${org}`);
export const transactions = (nc: NatsConnection, org: string,
                             q: { limit?: number; before?: string; type?: string } = {}) =>
  request<Page<Record<string, unknown>>>(nc, `query.transactions.${org}`, q);
export const calls = (nc: NatsConnection, org: string, q: CallsQuery = {}) =>
  request<Page<Record<string, unknown>>>(nc, `query.calls.${org}`, q);
export const call = (nc: NatsConnection, org: string, callId: string) =>
  request<Record<string, unknown>>(nc, `query.call.${org}`, { call_id: callId });
export const contact = (nc: NatsConnection, org: string,
                        q: { contact_id?: string; phone?: string }) =>
  request<Record<string, unknown>>(nc, `query.contact.${org}`, q);
export const hotLeads = (nc: NatsConnection, org: string, q: { limit?: number } = {}) =>
  request<Page<Record<string, unknown>>>(nc, `query.hot_leads.${org}`, q);
export interface Hold {
  call_id: string;
  amount_pence: number;
  fits: boolean;
  created_at: Date;
  expires_at: Date;
}
/** The credit held by calls in progress, newest first. */
export const holds = (nc: NatsConnection, org: string, q: { limit?: number } = {}) =>
  request<Page<Hold>>(nc, `query.holds.${org}`, q);

export interface Authorization {
  allowed: boolean;
  reason: string;
  available_pence: number; // balance + debt limit - held
  held_pence: number;
  hold?: "placed" | "active" | "settled" | "expired" | "refused"; // when asked for
}
/** Whether a call may start; with hold (and its call_id), reserve its
 * credit in the same round trip (idempotent by call_id). */
export const authorize = (nc: NatsConnection, org: string,
                          q: { call_id?: string; hold?: boolean } = {}) =>
  request<Authorization>(nc, `billing.authorize.${org}`, q);

// ---- credentials ----------------------------------------------------------

export interface CredentialRef {
  provider: string;
  type?: "default" | "inbound" | "outbound";
}

export const putCredential = (nc: NatsConnection, org: string,
                              c: CredentialRef & { config: string | Uint8Array }) =>
  request<Record<string, unknown>>(nc, `credentials.put.${org}`, c);
export const listCredentials = (nc: NatsConnection, org: string) =>
  request<Record<string, unknown>>(nc, `credentials.list.${org}`);
export const deleteCredential = (nc: NatsConnection, org: string, c: CredentialRef) =>
  request<Record<string, unknown>>(nc, `credentials.delete.${org}`, c);

/**
 * A credential's secret. The request carries a one-time X25519 public
 * key; vox-vault answers with a sealed box only its secret key opens, so
 * the secret never crosses NATS in the clear.
 */
export async function getCredential(nc: NatsConnection, org: string,
                                    c: CredentialRef): Promise<Uint8Array> {
  await sodium.ready;
  const kp = sodium.crypto_box_keypair();
  try {
    const reply = await request<{ sealed: Uint8Array }>(nc, `credentials.get.${org}`,
                                                        { ...c, reply_key: kp.publicKey });
    return sodium.crypto_box_seal_open(reply.sealed, kp.publicKey, kp.privateKey);
  } finally {
    sodium.memzero(kp.privateKey);
  }
}

// ---- alerts ---------------------------------------------------------------

export interface FollowOptions {
  durable: string;        // the consumer's name: it resumes where it stopped
  filter?: string;        // e.g. alert.hot_lead.<org>; default alert.>
  deliverAll?: boolean;   // a new consumer starts at the first alert (default: new ones only)
}

/**
 * Follow the ALERTS stream with a durable consumer: handler gets each
 * alert, decoded, and the message is acked when it returns (a throw
 * leaves it to be redelivered). Returns a function that stops.
 */
export async function followAlerts(
  nc: NatsConnection,
  opts: FollowOptions,
  handler: (a: Alert) => void | Promise<void>,
): Promise<() => Promise<void>> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.consumers.info("ALERTS", opts.durable);
  } catch {
    await jsm.consumers.add("ALERTS", {
      durable_name: opts.durable,
      ack_policy: AckPolicy.Explicit,
      filter_subject: opts.filter ?? "alert.>",
      deliver_policy: opts.deliverAll ? DeliverPolicy.All : DeliverPolicy.New,
    });
  }
  const consumer = await jetstream(nc).consumers.get("ALERTS", opts.durable);
  const messages = await consumer.consume();
  const done = (async () => {
    for await (const m of messages) {
      const kind = m.subject.split(".").slice(0, 2).join(".");
      const alert = decodePayload(m.data);
      const a = (["alert.hot_lead", "alert.low_balance", "alert.debt_limit"].includes(kind)
        ? { kind, subject: m.subject, alert }
        : { kind: "unknown", subject: m.subject, alert }) as Alert;
      try {
        await handler(a);
        m.ack();
      } catch {
        m.nak();
      }
    }
  })();
  return async () => {
    await messages.close();
    await done;
  };
}
