#!/usr/bin/env python3
"""Writes the hand-built edge inputs of tests/fuzz/regress/ (the first
regression vectors, before the fuzzers found anything): deep nesting, huge
length prefixes, truncated maps, limits plus one. Run from anywhere; it
rewrites only the files named edge-*, keeping the outcome each name
states. Vectors the fuzzers find are added next to them by scripts/fuzz.sh
(crash-* files) and kept as they are."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
ORG = "3f2c9a1e-7b4d-4c8e-9a61-2d5f8e0b7c34"
CALL = "5b1d7e2a-3c4f-4a8b-9c0d-1e2f3a4b5c6d"


def s(v):
    b = v.encode() if isinstance(v, str) else v
    n = len(b)
    if n < 32:
        return bytes([0xa0 | n]) + b
    if n < 256:
        return b"\xd9" + bytes([n]) + b
    if n < 65536:
        return b"\xda" + struct.pack(">H", n) + b
    return b"\xdb" + struct.pack(">I", n) + b


def mp_map(n):
    if n < 16:
        return bytes([0x80 | n])
    if n < 65536:
        return b"\xde" + struct.pack(">H", n)
    return b"\xdf" + struct.pack(">I", n)


def i64(v):
    return b"\xd3" + struct.pack(">q", v)


started = [("event_id", s("evt-1")), ("org_id", s(ORG)), ("call_id", s(CALL)),
           ("direction", s("inbound")), ("from_number", s("+447700900123")),
           ("to_number", s("+442071838750")), ("started_at", i64(1795000000000))]


def event(pairs, count=None):
    out = mp_map(len(pairs) if count is None else count)
    for k, v in pairs:
        out += s(k) + v
    return out


def write(target, name, data):
    """Rewrites edge-<name>.<outcome>, keeping the outcome its name states
    (the replay checks it). A new vector is written without one: name it
    by hand with the outcome it must have, never the one it happens to
    get (tests/fuzz/regress/README.md)."""
    d = os.path.join(here, target)
    os.makedirs(d, exist_ok=True)
    base = "edge-" + name
    named = [f for f in os.listdir(d) if f.rsplit(".", 1)[0] == base]
    with open(os.path.join(d, named[0] if named else base), "wb") as f:
        f.write(data)


for kind in ["call.started", "call.ended", "payment.succeeded",
             "payment.refunded", "lead.scored", "alert.hot_lead",
             "alert.low_balance", "alert.debt_limit"]:
    # nesting: 32 levels is allowed, 33 refused, 100000 must not recurse
    write(kind, "nest-32", event(started + [("x", b"\x91" * 31 + b"\x90")]))
    write(kind, "nest-33", event(started + [("x", b"\x91" * 32 + b"\x91\x00")]))
    write(kind, "nest-20000", event(started + [("x", b"\x91" * 20000 + b"\x90")]))
    write(kind, "nest-maps", event(started + [("x", b"\x81\xa1k" * 40 + b"\x80")]))
    # length prefixes far beyond the input
    write(kind, "str32-huge", event(started[:1] + [("org_id", b"\xdb\xff\xff\xff\xff")]))
    write(kind, "bin32-huge", event(started + [("x", b"\xc6\xff\xff\xff\xfe" + b"ab")]))
    write(kind, "array32-huge", event(started + [("x", b"\xdd\xff\xff\xff\xff\x00")]))
    write(kind, "map32-huge", b"\xdf\xff\xff\xff\xff" + s("event_id"))
    write(kind, "map-257", event([("k%d" % i, b"\xc0") for i in range(257)]))
    write(kind, "ext32-huge", event(started[:6] + [("started_at", b"\xc9\xff\xff\xff\xff\xff")]))
    # truncated: counts more entries than there are, cut inside values
    write(kind, "trunc-count", event(started, count=len(started) + 3))
    full = event(started)
    for cut in (1, 2, 9, len(full) // 2, len(full) - 1):
        write(kind, "trunc-%d" % cut, full[:cut])
    write(kind, "empty", b"")
    write(kind, "c1", b"\xc1")
    write(kind, "key-c1", b"\x81\xc1\xc0")
    write(kind, "key-not-str", event(started) [:0] + b"\x81\x01\x02")
    write(kind, "dup-key", event(started + [("event_id", b"\xc0")]))
    write(kind, "trailing", full + b"\x00")
    # timestamps: 12-byte form with nanoseconds out of range, wrong sizes
    write(kind, "ts-ns", event(started[:6] + [("started_at", b"\xc7\x0c\xff" + struct.pack(">I", 1000000000) + struct.pack(">q", 1795000000))]))
    write(kind, "ts-3", event(started[:6] + [("started_at", b"\xc7\x03\xff\x00\x00\x00")]))
    write(kind, "u64-max", event(started[:6] + [("started_at", b"\xcf" + b"\xff" * 8)]))
    # text: one byte over a limit, NUL, overlong UTF-8, surrogate
    write(kind, "name-201", event(started + [("caller_name", s("'" * 201))]))
    write(kind, "nul", event(started + [("caller_name", s(b"a\x00b"))]))
    write(kind, "overlong", event(started + [("caller_name", s(b"\xc0\xaf"))]))
    write(kind, "surrogate", event(started + [("caller_name", s(b"\xed\xa0\x80"))]))
    write(kind, "float-nan", event(started + [("sentiment_score", b"\xcb\x7f\xf8" + b"\x00" * 6)]))

# vox-query's request decoder
q = "query_request"
write(q, "over-4096", event([("x", s("'" * 4100))]))
write(q, "limit-u64", event([("limit", b"\xcf" + b"\xff" * 8)]))
write(q, "limit-101", event([("limit", b"\x65")]))
write(q, "nest-100000", event([("x", b"\x91" * 4000 + b"\x90")]))
write(q, "str32-huge", event([("status", b"\xdb\xff\xff\xff\xff")]))
write(q, "map32-huge", b"\xdf\xff\xff\xff\xff")
write(q, "cursor-garbage", event([("before", s("'; DROP TABLE calls; --"))]))
write(q, "cursor-long", event([("before", s("A" * 200))]))
write(q, "since-after-until", event([("since", i64(1795000000001)), ("until", i64(1795000000000))]))
write(q, "trunc", event([("limit", b"\x05"), ("status", s("completed"))])[:-3])
write(q, "empty", b"")
write(q, "dup-key", event([("limit", b"\x05"), ("limit", b"\x06")]))

# billing.authorize's request decoder
a = "authorize_request"
write(a, "empty", b"")
write(a, "empty-map", b"\x80")
write(a, "call-id", event([("call_id", s(CALL))]))
write(a, "call-id-nil", event([("call_id", b"\xc0")]))
write(a, "call-id-upper", event([("call_id", s(CALL.upper()))]))
write(a, "call-id-int", event([("call_id", b"\x01")]))
write(a, "call-id-bad", event([("call_id", s("'; DROP TABLE organizations; --"))]))
write(a, "call-id-twice", event([("call_id", s(CALL)), ("call_id", s(CALL))]))
write(a, "call-id-cut", event([("call_id", s(CALL))])[:-5])
write(a, "over-4096", event([("x", s("'" * 4100))]))
write(a, "at-4096", event([("x", s("p" * (4096 - 6)))]))
write(a, "array", b"\x91\x01")
write(a, "c1", b"\xc1\xc1")
write(a, "trailing", b"\x80\x80")
write(a, "key-not-str", b"\x81\x01\x02")
write(a, "map32-huge", b"\xdf\xff\xff\xff\xff")
write(a, "str32-huge", event([("x", b"\xdb\xff\xff\xff\xff")]))
write(a, "nest-32", event([("x", b"\x91" * 31 + b"\x90")]))
write(a, "nest-33", event([("x", b"\x91" * 32 + b"\x91\x00")]))
write(a, "nest-4000", event([("x", b"\x91" * 4000 + b"\x90")]))

# credentials.*'s request decoder
c = "credentials_request"
KEY = b"\xc4\x20" + b"k" * 32
write(c, "empty", b"")
write(c, "empty-map", b"\x80")
write(c, "put", event([("provider", s("twilio")), ("type", s("inbound")),
                       ("config", b"\xc4\x05" + b"{\"a\"}"),
                       ("metadata", b"\x81" + s("label") + s("main line"))]))
write(c, "get", event([("provider", s("vapi")), ("reply_key", KEY)]))
write(c, "provider-unknown", event([("provider", s("'; DROP TABLE org_credentials; --"))]))
write(c, "provider-int", event([("provider", b"\x01")]))
write(c, "provider-twice", event([("provider", s("vapi")), ("provider", s("twilio"))]))
write(c, "provider-then-nil", event([("provider", s("vapi")), ("provider", b"\xc0")]))
write(c, "metadata-twice", event([("metadata", b"\x80"), ("metadata", b"\x80")]))
write(c, "type-bad", event([("type", s("primary"))]))
write(c, "config-int", event([("config", b"\x05")]))
write(c, "reply-key-31", event([("reply_key", b"\xc4\x1f" + b"k" * 31)]))
write(c, "reply-key-str", event([("reply_key", s("k" * 32))]))
write(c, "metadata-nil", event([("metadata", b"\xc0")]))
write(c, "metadata-int-value", event([("metadata", b"\x81" + s("a") + b"\x01")]))
write(c, "metadata-nul", event([("metadata", b"\x81" + s("a") + s(b"x\x00y"))]))
write(c, "metadata-overlong", event([("metadata", b"\x81" + s("a") + s(b"\xc0\xaf"))]))
write(c, "metadata-4097", event([("metadata", b"\x81" + s("a") + s("m" * 4100))]))
write(c, "org-id-ignored", event([("org_id", s(ORG)), ("org_id", s(ORG))]))
write(c, "array", b"\x91\x01")
write(c, "trailing", b"\x80\x80")
write(c, "key-not-str", b"\x81\x01\x02")
write(c, "map32-huge", b"\xdf\xff\xff\xff\xff")
write(c, "config-bin32-huge", event([("config", b"\xc6\xff\xff\xff\xff")]))
write(c, "nest-4000", event([("x", b"\x91" * 4000 + b"\x90")]))

