#!/usr/bin/env python3
"""Write the contract's test vectors: one <subject>.vec file per message kind.

    python3 subjects/vectors/generate.py

Everything here is independent of the C code: a small MessagePack writer with
explicit control over every encoding, a model of each message kind (its field
table), the canonical JSON computed from that model, and a model of what the
C encoder emits (to mark byte-exact cases `canonical: yes`). The file format
and the canonical JSON rules are in README.md next to this script.

Python 3 standard library only.
"""

import datetime
import math
import json
import os
import sys
import re
import struct

# =============================================================================
# MessagePack writer
#
# Every function returns a V: the encoded bytes plus the value they stand for
# in the model (None for nil). Nothing picks an encoding behind your back
# except the *_min helpers, which mirror what msgpack-c writes.
# =============================================================================


class V:
    """An encoded msgpack value and its model value."""

    __slots__ = ("enc", "val")

    def __init__(self, enc, val=None):
        self.enc = bytes(enc)
        self.val = val

    def __add__(self, other):  # V + b"..." glues raw bytes on
        return V(self.enc + bytes(other), self.val)


class TS:
    """A timestamp value: seconds and nanoseconds since the Unix epoch."""

    __slots__ = ("sec", "nsec")

    def __init__(self, sec, nsec=0):
        self.sec, self.nsec = sec, nsec


class Opaque:
    """A value the message model does not interpret (bin, ext, arrays...)."""

    def __init__(self, what):
        self.what = what


def raw(b, val=None):
    """Arbitrary bytes, for things no well-formed encoder would write."""
    return V(b, Opaque("raw") if val is None else val)


# ---- nil, bool ----------------------------------------------------------------

def nil():
    return V(b"\xc0", None)


def boolean(b):
    return V(b"\xc3" if b else b"\xc2", Opaque("bool"))


# ---- integers -------------------------------------------------------------------

def fixint(n):
    assert -32 <= n <= 127
    return V(struct.pack(">b" if n < 0 else ">B", n), n)


def u8(n):
    return V(b"\xcc" + struct.pack(">B", n), n)


def u16(n):
    return V(b"\xcd" + struct.pack(">H", n), n)


def u32(n):
    return V(b"\xce" + struct.pack(">I", n), n)


def u64(n):
    return V(b"\xcf" + struct.pack(">Q", n), n)


def i8(n):
    return V(b"\xd0" + struct.pack(">b", n), n)


def i16(n):
    return V(b"\xd1" + struct.pack(">h", n), n)


def i32(n):
    return V(b"\xd2" + struct.pack(">i", n), n)


def i64(n):
    return V(b"\xd3" + struct.pack(">q", n), n)


def int_min(n):
    """msgpack-c's msgpack_pack_int64: the smallest form, signed forms only
    for negative values."""
    if n < -(1 << 5):
        if n < -(1 << 15):
            return i64(n) if n < -(1 << 31) else i32(n)
        return i16(n) if n < -(1 << 7) else i8(n)
    if n < (1 << 7):
        return fixint(n)
    if n < (1 << 16):
        return u8(n) if n < (1 << 8) else u16(n)
    return u32(n) if n < (1 << 32) else u64(n)


def int_widths(n):
    """(form name, V) for every msgpack integer form that can hold n."""
    out = []
    if -32 <= n <= 127:
        out.append(("fixint", fixint(n)))
    for name, fn, lo, hi in (
        ("uint8", u8, 0, 0xFF), ("uint16", u16, 0, 0xFFFF),
        ("uint32", u32, 0, 0xFFFFFFFF), ("uint64", u64, 0, (1 << 64) - 1),
        ("int8", i8, -(1 << 7), (1 << 7) - 1),
        ("int16", i16, -(1 << 15), (1 << 15) - 1),
        ("int32", i32, -(1 << 31), (1 << 31) - 1),
        ("int64", i64, -(1 << 63), (1 << 63) - 1),
    ):
        if lo <= n <= hi:
            out.append((name, fn(n)))
    return out


# ---- floats ---------------------------------------------------------------------

def f32(x):
    b = struct.pack(">f", x)
    return V(b"\xca" + b, struct.unpack(">f", b)[0])


def f64(x):
    return V(b"\xcb" + struct.pack(">d", x), float(x))


# ---- strings --------------------------------------------------------------------

def _b(s):
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def _sval(s):
    # the model keeps text that is valid UTF-8 as str, anything else as bytes
    if isinstance(s, str):
        return s
    try:
        return bytes(s).decode("utf-8")
    except UnicodeDecodeError:
        return bytes(s)


def fixstr(s):
    b = _b(s)
    assert len(b) < 32
    return V(bytes([0xA0 | len(b)]) + b, _sval(s))


def str8(s):
    b = _b(s)
    return V(b"\xd9" + struct.pack(">B", len(b)) + b, _sval(s))


def str16(s):
    b = _b(s)
    return V(b"\xda" + struct.pack(">H", len(b)) + b, _sval(s))


def str32(s):
    b = _b(s)
    return V(b"\xdb" + struct.pack(">I", len(b)) + b, _sval(s))


def str_min(s):
    """msgpack-c's msgpack_pack_str: fixstr, str8, str16, str32."""
    n = len(_b(s))
    return (fixstr if n < 32 else str8 if n < 256 else str16 if n < 65536
            else str32)(s)


# ---- bin, arrays, ext -----------------------------------------------------------

def bin8(b):
    return V(b"\xc4" + struct.pack(">B", len(b)) + bytes(b), Opaque("bin"))


def bin16(b):
    return V(b"\xc5" + struct.pack(">H", len(b)) + bytes(b), Opaque("bin"))


def array(items, form=None):
    n = len(items)
    if form is None:
        form = "fixarray" if n < 16 else "array16" if n < 65536 else "array32"
    hdr = {"fixarray": lambda: bytes([0x90 | n]),
           "array16": lambda: b"\xdc" + struct.pack(">H", n),
           "array32": lambda: b"\xdd" + struct.pack(">I", n)}[form]()
    return V(hdr + b"".join(v.enc for v in items), Opaque("array"))


def nested_arrays(depth, leaf=None):
    """depth arrays of one element each, around leaf (a fixint 0)."""
    leaf = leaf or fixint(0)
    return V(b"\x91" * depth + leaf.enc, Opaque("array"))


def ext(etype, data, form=None):
    """An extension value; form is fixext (1/2/4/8/16 bytes), ext8, ext16."""
    n = len(data)
    if form is None:
        form = "fixext" if n in (1, 2, 4, 8, 16) else "ext8"
    if form == "fixext":
        hdr = bytes([{1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}[n]])
    elif form == "ext8":
        hdr = b"\xc7" + struct.pack(">B", n)
    else:
        hdr = b"\xc8" + struct.pack(">H", n)
    return V(hdr + struct.pack(">b", etype) + bytes(data), Opaque("ext"))


# ---- timestamps (extension type -1) ---------------------------------------------

def ts32(sec):
    return V(ext(-1, struct.pack(">I", sec)).enc, TS(sec, 0))


def ts64(sec, nsec=0):
    return V(ext(-1, struct.pack(">Q", (nsec << 34) | sec)).enc, TS(sec, nsec))


def ts96(sec, nsec=0):
    data = struct.pack(">I", nsec) + struct.pack(">q", sec)
    return V(ext(-1, data, "ext8").enc, TS(sec, nsec))


def ts_min(sec, nsec=0):
    """What vox writes: timestamp32 when it can, else timestamp64/96."""
    if nsec == 0 and 0 <= sec < (1 << 32):
        return ts32(sec)
    if 0 <= sec < (1 << 34):
        return ts64(sec, nsec)
    return ts96(sec, nsec)


def ms(n, form=int_min):
    """A timestamp as an integer of Unix milliseconds (floor division)."""
    v = form(n)
    return V(v.enc, TS(n // 1000, (n % 1000) * 1000000))


# ---- maps -----------------------------------------------------------------------

def map_header(n, form=None):
    if form is None:
        form = "fixmap" if n < 16 else "map16" if n < 65536 else "map32"
    if form == "fixmap":
        assert n < 16
        return bytes([0x80 | n])
    if form == "map16":
        return b"\xde" + struct.pack(">H", n)
    return b"\xdf" + struct.pack(">I", n)


def key_enc(k):
    """A map key: a str is written as the minimal str, a V as given."""
    return str_min(k).enc if isinstance(k, str) else k.enc


def key_name(k):
    return k if isinstance(k, str) else k.val


def mp_map(pairs, form=None, count=None):
    """A map from (key, V) pairs, in the given order. count overrides the
    entry count in the header (to make it lie)."""
    n = len(pairs) if count is None else count
    return map_header(n, form) + b"".join(key_enc(k) + v.enc for k, v in pairs)


# ---- pair-list helpers ----------------------------------------------------------

def put(pairs, key, v):
    """Replace key's value (keeping its place), or append it."""
    out, done = [], False
    for k, old in pairs:
        if key_name(k) == key and not done:
            out.append((k, v))
            done = True
        else:
            out.append((k, old))
    if not done:
        out.append((key, v))
    return out


def drop(pairs, *keys):
    return [(k, v) for k, v in pairs if key_name(k) not in keys]


def last(pairs, key):
    """Move key to the end of the map."""
    return drop(pairs, key) + [p for p in pairs if key_name(p[0]) == key]


def get(pairs, key):
    for k, v in pairs:
        if key_name(k) == key:
            return v
    raise KeyError(key)


# =============================================================================
# The model: field tables (as in subjects/*.md and the contract)
# =============================================================================

DIRECTIONS = ("inbound", "outbound")
CALL_STATUSES = ("completed", "failed")
SENTIMENTS = ("positive", "neutral", "negative")
URGENCIES = ("low", "medium", "high", "critical")
LEAD_STATUSES = ("hot", "warm", "cold", "contacted")
MONEY_MAX = 100000000
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def F(name, ftype, req, *limits):
    return (name, ftype, req, limits)


def wallet(amount_key):
    # what the bigint columns hold: any balance, limits and amounts >= 0
    return [
        F("alert_id", "uuid", True), F("org_id", "uuid", True),
        F("balance_pence", "int", True, INT64_MIN, INT64_MAX),
        F("debt_limit_pence", "int", True, 0, INT64_MAX),
        F(amount_key, "int", True, 0, INT64_MAX),
        F("call_id", "uuid", False), F("created_at", "ts", True),
    ]


KINDS = {
    "call.started": [
        F("event_id", "event_id", True), F("org_id", "uuid", True),
        F("call_id", "uuid", True), F("vapi_call_id", "id", False),
        F("direction", "enum", True, DIRECTIONS),
        F("from_number", "e164", True), F("to_number", "e164", True),
        F("caller_name", "text", False, 200), F("contact_id", "uuid", False),
        F("started_at", "ts", True),
    ],
    "call.ended": [
        F("event_id", "event_id", True), F("org_id", "uuid", True),
        F("call_id", "uuid", True), F("ended_at", "ts", True),
        F("duration_seconds", "int", True, 0, 86400),
        F("status", "enum", True, CALL_STATUSES),
        F("direction", "enum", False, DIRECTIONS),
        F("from_number", "e164", False), F("to_number", "e164", False),
        F("started_at", "ts", False),
        F("transcript", "text", False, 512 * 1024),
        F("summary", "text", False, 16384),
        F("recording_url", "text", False, 2048),
        F("sentiment_summary", "text", False, 16384),
        F("sentiment_label", "enum", False, SENTIMENTS),
        F("sentiment_score", "float", False, 0.0, 1.0),
        F("sentiment_urgency", "enum", False, URGENCIES),
    ],
    "payment.succeeded": [
        F("event_id", "event_id", True), F("org_id", "uuid", True),
        F("stripe_payment_intent_id", "id", True),
        F("amount_pence", "int", True, 1, MONEY_MAX),
        F("description", "text", False, 1000), F("occurred_at", "ts", True),
    ],
    "payment.refunded": [
        F("event_id", "event_id", True), F("org_id", "uuid", True),
        F("stripe_refund_id", "id", True),
        F("stripe_payment_intent_id", "id", True),
        F("amount_pence", "int", True, 1, MONEY_MAX),
        F("occurred_at", "ts", True),
    ],
    "lead.scored": [
        F("event_id", "event_id", True), F("org_id", "uuid", True),
        F("contact_id", "uuid", False), F("phone", "e164", False),
        F("call_id", "uuid", False), F("lead_score", "int", True, 0, 100),
        F("lead_status", "enum", False, LEAD_STATUSES),
        F("lead_name", "text", False, 200),
        F("service_interest", "text", False, 1000),
        F("summary", "text", False, 16384), F("scored_at", "ts", True),
    ],
    "alert.hot_lead": [
        F("alert_id", "uuid", True), F("org_id", "uuid", True),
        F("contact_id", "uuid", True), F("call_id", "uuid", False),
        F("lead_name", "text", False, 200), F("lead_phone", "e164", False),
        F("lead_score", "int", True, 0, 100),
        F("urgency_level", "enum", True, URGENCIES),
        F("service_interest", "text", False, 1000),
        F("summary", "text", False, 16384), F("created_at", "ts", True),
    ],
    "alert.low_balance": wallet("threshold_pence"),
    "alert.debt_limit": wallet("shortfall_pence"),
}

TS_MIN = 946684800   # 2000-01-01T00:00:00Z
TS_MAX = 4102444800  # 2100-01-01T00:00:00Z (excluded)
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
E164_RE = re.compile(r"^\+[1-9][0-9]{7,14}$")


def present(kind, pairs):
    """{field: model value} of the known fields the message gives (nil and
    unknown keys left out)."""
    names = {f[0] for f in KINDS[kind]}
    out = {}
    for k, v in pairs:
        name = key_name(k)
        if name in names and v.val is not None:
            out[name] = v.val
    return out


def model_check(kind, pairs):
    """Independent validity check of a case meant to be valid: returns the
    problem, or None. Structural rules are not modelled (the bytes of valid
    cases come from this writer)."""
    seen = set()
    names = {f[0] for f in KINDS[kind]}
    for k, _ in pairs:
        name = key_name(k)
        if not isinstance(name, str):
            return "non-string key"
        if name in names and name in seen:
            return "duplicate " + name
        seen.add(name)
    vals = present(kind, pairs)
    for name, ftype, req, lim in KINDS[kind]:
        if name not in vals:
            if req:
                return "missing " + name
            continue
        v = vals[name]
        if ftype == "event_id":
            ok = isinstance(v, str) and 1 <= len(v) <= 128 and \
                all(0x20 <= ord(c) <= 0x7E for c in v)
        elif ftype == "id":
            ok = isinstance(v, str) and 1 <= len(v) <= 255 and \
                all(0x21 <= ord(c) <= 0x7E for c in v)
        elif ftype == "text":
            ok = isinstance(v, str) and "\0" not in v and \
                len(v.encode("utf-8")) <= lim[0]
        elif ftype == "uuid":
            ok = isinstance(v, str) and bool(UUID_RE.match(v))
        elif ftype == "e164":
            ok = isinstance(v, str) and bool(E164_RE.match(v))
        elif ftype == "enum":
            ok = v in lim[0]
        elif ftype == "int":
            ok = type(v) is int and lim[0] <= v <= lim[1]
        elif ftype == "float":
            ok = type(v) in (int, float) and not math.isnan(v) and \
                lim[0] <= v <= lim[1] and (type(v) is float or
                                           -(1 << 63) <= v < (1 << 63))
        else:  # ts
            ok = isinstance(v, TS) and 0 <= v.nsec <= 999999999 and \
                TS_MIN <= v.sec < TS_MAX
        if not ok:
            return "bad " + name
    if kind == "lead.scored" and "contact_id" not in vals and \
            "phone" not in vals:
        return "missing contact_id"
    return None


# ---- canonical JSON -------------------------------------------------------------

def json_str(s):
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append("\\u%04x" % o)
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def json_float(x):
    for prec in (15, 16, 17):
        s = "%.*g" % (prec, x)
        if float(s) == x:
            return s
    return s


def json_ts(t):
    d = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=t.sec)
    return json_str(d.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % t.nsec)


def canonical_json(kind, pairs):
    vals = present(kind, pairs)
    parts = []
    for name, ftype, _, _ in KINDS[kind]:
        if name not in vals:
            continue
        v = vals[name]
        if ftype == "uuid":
            text = json_str(v.lower())
        elif ftype == "ts":
            text = json_ts(v)
        elif ftype == "int":
            text = "%d" % v
        elif ftype == "float":
            text = json_float(float(v))
        else:
            text = json_str(v)
        parts.append(json_str(name) + ":" + text)
    return "{" + ",".join(parts) + "}"


# ---- what the C encoder writes --------------------------------------------------

def encoder_bytes(kind, pairs):
    """The bytes msgpack-c would produce for this value: present fields in
    table order, minimal map/str/int headers, float64, shortest timestamp."""
    vals = present(kind, pairs)
    entries = []
    for name, ftype, _, _ in KINDS[kind]:
        if name not in vals:
            continue
        v = vals[name]
        if ftype == "uuid":
            enc = str_min(v.lower())
        elif ftype == "ts":
            enc = ts_min(v.sec, v.nsec)
        elif ftype == "int":
            enc = int_min(v)
        elif ftype == "float":
            enc = f64(float(v))
        else:
            enc = str_min(v)
        entries.append(str_min(name).enc + enc.enc)
    return map_header(len(entries)) + b"".join(entries)


# =============================================================================
# Cases and .vec output
# =============================================================================


class Vec:
    """The cases of one .vec file."""

    def __init__(self, kind):
        self.kind = kind
        self.cases = []
        self.names = set()

    def _add(self, case):
        assert case["name"] not in self.names, case["name"]
        assert len(case["name"]) <= 90, case["name"]
        self.names.add(case["name"])
        self.cases.append(case)

    def ok(self, name, pairs, form=None, subject=None):
        """A valid case: bytes from pairs; JSON and canonical-ness from the
        model."""
        problem = model_check(self.kind, pairs)
        assert problem is None, "%s: %s: %s" % (self.kind, name, problem)
        data = mp_map(pairs, form)
        self._add(dict(name=name, data=data, subject=subject,
                       json=canonical_json(self.kind, pairs),
                       canonical=data == encoder_bytes(self.kind, pairs)))

    def bad(self, name, data, code, field="-", subject=None):
        """An invalid case: data is bytes or a pair list (written as a map)."""
        if isinstance(data, list):
            data = mp_map(data)
        self._add(dict(name=name, data=bytes(data), subject=subject,
                       error="%s %s" % (code, field)))

    def write(self, path):
        lines = [
            "# %s test vectors: written by generate.py, do not edit." % self.kind,
            "# Format: README.md in this folder.",
            "",
        ]
        for c in self.cases:
            lines.append("== " + c["name"])
            data = c["data"]
            if len(data) <= 2048:  # readable: 32 spaced bytes a line
                for i in range(0, max(len(data), 1), 32):
                    lines.append(("hex: " + " ".join(
                        "%02x" % b for b in data[i:i + 32])).rstrip())
            else:  # big cases: dense
                for i in range(0, len(data), 512):
                    lines.append("hex: " + data[i:i + 512].hex())
            if c.get("subject"):
                lines.append("subject: " + c["subject"])
            if "error" in c:
                lines.append("error: " + c["error"])
            else:
                lines.append("json: " + c["json"])
                if c["canonical"]:
                    lines.append("canonical: yes")
            lines.append("")
        text = "\n".join(lines)
        assert max(len(l) for l in lines) < 60000  # the reader's line buffer
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def write_json(self, path):
        """The same cases as JSON (json/README.md), for any language."""
        cases = []
        for c in self.cases:
            case = {"name": c["name"], "hex": c["data"].hex()}
            if c.get("subject"):
                case["subject"] = c["subject"]
            if "error" in c:
                code, field = c["error"].split(" ", 1)
                case["error"] = {"code": code,
                                 "field": None if field == "-" else field}
            else:
                case["json"] = json.loads(c["json"])
                case["json_text"] = c["json"]
                case["canonical"] = bool(c["canonical"])
            cases.append(case)
        doc = {"format": "vox-vectors/1", "kind": self.kind,
               "note": "written by generate.py, do not edit",
               "cases": cases}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")


# =============================================================================
# Realistic values
# =============================================================================

ORG = "3f2c9a1e-7b4d-4c8e-9a61-2d5f8e0b7c34"
OTHER_ORG = "8a41c0de-2f6b-4d3a-9e57-1c0b9a8f7e6d"
CALL = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
CONTACT = "a8e1f0d2-5c3b-4e79-8f16-0b2d4c6e8a90"
ALERT = "d4c3b2a1-9e8f-4a7b-8c6d-5e4f3a2b1c0d"
EVT = "evt_1NxR4kL2eZvKYlo2CqF8b9Xw"
VAPI = "vapi_0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
PI = "pi_3AbC9dEfGhIjKlMn0pQrStUv"
RE_ID = "re_3AbC9dEfGhIjKlMn1wXyZaBc"
PHONE = "+447700900123"
PHONE2 = "+442071838750"


def unix(*ymdhms):
    d = datetime.datetime(*ymdhms)
    return int((d - datetime.datetime(1970, 1, 1)).total_seconds())


T0 = unix(2026, 1, 5, 10, 3, 21)  # a call starts
T1 = T0 + 187                     # ... and ends


def s(text):
    return str_min(text)


def rev(pairs):
    return list(reversed(pairs))


UNKNOWN_EXTRAS = [
    ("schema_version", fixint(2)),
    ("x_meta", V(mp_map([("source", s("vapi")), ("tags", array(
        [s("a"), fixint(1), nil(), boolean(True), f64(2.5)]))]),
        Opaque("map"))),
    ("x_list", array([array([]), V(mp_map([]), Opaque("map")),
                      bin8(b"\x00\x01\xff"), ext(7, b"\x01\x02\x03")])),
    ("x_big", u64((1 << 64) - 1)),
]

BAD_UUIDS = [
    ("32 hex digits without hyphens", CALL.replace("-", "")),
    ("in braces", "{" + CALL + "}"),
    ("urn:uuid: prefix", "urn:uuid:" + CALL),
    ("a non-hex digit g", CALL[:-1] + "g"),
    ("35 characters", CALL[:-1]),
    ("37 characters", CALL + "0"),
    ("hyphen misplaced", CALL[:7] + "-" + CALL[7] + CALL[9:]),
    ("empty", ""),
]

BAD_PHONES = [
    ("no plus", "447700900123"),
    ("too short (7 digits)", "+4477009"),
    ("too long (16 digits)", "+4477009001234567"),
    ("leading 0", "+07700900123"),
    ("letters", "+44770090012a"),
    ("spaces", "+44 7700 900123"),
    ("only a plus", "+"),
    ("double plus", "++447700900123"),
]

BAD_UTF8 = [
    ("byte ff", b"Priya \xff Shah"),
    ("overlong c0 af", b"Priya \xc0\xaf"),
    ("surrogate ed a0 80", b"Priya \xed\xa0\x80"),
    ("above U+10FFFF f4 90 80 80", b"Priya \xf4\x90\x80\x80"),
    ("lone continuation 80", b"\x80Priya"),
    ("sequence cut at the end e2 82", b"Priya \xe2\x82"),
    ("5-byte form f8 88 80 80 80", b"\xf8\x88\x80\x80\x80"),
]

ESCAPES = 'Dan "Danny" O\'Brien \\ back\nline\ttab\rcr \x01 \x1f \x7f end'
UTF8_TEXT = "Zoë Ó Súilleabháin — 日本語 😀 £49"


# =============================================================================
# Cases shared by every kind
# =============================================================================

def common(v, base, full):
    """Cases every kind has. base: the minimal valid message (required
    fields, table order, canonical forms); full: every optional field too."""
    kind = v.kind
    fields = KINDS[kind]
    first = fields[0][0]
    ts_key = [f[0] for f in fields if f[1] == "ts" and f[2]][0]
    subj = kind + "." + ORG

    # ---- valid ----
    v.ok("minimal: required fields only", base)
    v.ok("full: every optional field", full)
    v.ok("keys in reverse order", rev(full))
    v.ok("unknown extra keys, nested map and array values",
         base[:2] + UNKNOWN_EXTRAS[:2] + base[2:] + UNKNOWN_EXTRAS[2:])
    v.ok("unknown key given twice is still ignored",
         base + [("x_note", s("a")), ("x_note", s("b"))])
    v.ok("empty key is an unknown key", [("", s("ignored"))] + base)
    v.ok("map16 header for a small map", base, form="map16")
    v.ok("map32 header for a small map", base, form="map32")
    v.ok("keys in str8 form", [(str8(k), x) for k, x in base])
    types = {f[0]: f[1] for f in fields}
    v.ok("upper-case UUIDs (lowercased)",
         [(k, s(x.val.upper()) if types[k] == "uuid" else x)
          for k, x in base])
    v.ok("org_id in str8 form", put(base, "org_id", str8(ORG)))
    v.ok("org_id in str16 form", put(base, "org_id", str16(ORG)))
    v.ok("org_id in str32 form", put(base, "org_id", str32(ORG)))
    v.ok("timestamp32 (fixext4)", put(base, ts_key, ts32(T0)))
    v.ok("timestamp64 (fixext8) with nanoseconds",
         put(base, ts_key, ts64(T0, 123456789)))
    v.ok("timestamp64 with zero nanoseconds", put(base, ts_key, ts64(T0, 0)))
    v.ok("timestamp96 (ext8 len 12)", put(base, ts_key, ts96(T0, 500)))
    v.ok("timestamp96 with zero nanoseconds", put(base, ts_key, ts96(T0)))
    v.ok("timestamp as integer milliseconds (uint64)",
         put(base, ts_key, ms(T0 * 1000 + 123)))
    v.ok("timestamp as integer milliseconds (int64)",
         put(base, ts_key, ms(T0 * 1000 + 7, i64)))
    v.ok("timestamp as whole-second milliseconds",
         put(base, ts_key, ms(T0 * 1000)))
    v.ok("earliest timestamp 2000-01-01", put(base, ts_key, ts32(TS_MIN)))
    v.ok("earliest timestamp as milliseconds",
         put(base, ts_key, ms(TS_MIN * 1000)))
    v.ok("latest timestamp 2099-12-31T23:59:59.999999999",
         put(base, ts_key, ts64(TS_MAX - 1, 999999999)))
    v.ok("latest timestamp as milliseconds",
         put(base, ts_key, ms(TS_MAX * 1000 - 1)))
    v.ok("32 nested arrays under an unknown key",
         base + [("x_deep", nested_arrays(32))])
    fillers = [("x%03d" % i, fixint(0)) for i in range(256 - len(base))]
    v.ok("256 entries (the limit) with unknown keys", base + fillers)
    v.ok("subject with the matching org", base, subject=subj)
    v.ok("subject org token in upper case", base,
         subject=kind + "." + ORG.upper())

    # ---- invalid: whole message ----
    data = mp_map(base)
    v.bad("empty input", b"", "truncated")
    v.bad("top level is an array", array([x for _, x in base]).enc,
          "not_a_map")
    v.bad("top level is a bare integer", b"\x2a", "not_a_map")
    v.bad("top level is nil", b"\xc0", "not_a_map")
    v.bad("top level is a string", s(first).enc, "not_a_map")
    v.bad("top level is 0xc1", b"\xc1", "not_a_map")
    v.bad("map16 header cut", b"\xde\x00", "truncated")
    v.bad("map32 header claims ~4G entries", b"\xdf\xff\xff\xff\xff"
          + data[1:], "truncated")
    v.bad("map32 header claims 300 entries, bytes are short",
          b"\xdf\x00\x00\x01\x2c" + data[1:], "truncated")
    v.bad("map header claims one entry more than given",
          mp_map(base, count=len(base) + 1), "truncated")
    v.bad("257 entries", base + [("x%03d" % i, fixint(0))
                                 for i in range(257 - len(base))], "too_large")
    v.bad("300 entries", base + [("x%03d" % i, fixint(0))
                                 for i in range(300 - len(base))], "too_large")
    v.bad("trailing nil after the map", data + b"\xc0", "trailing_bytes")
    v.bad("a second map after the map", data + data, "trailing_bytes")
    v.bad("trailing bytes reported before a missing field",
          mp_map(base[1:]) + b"\x00", "trailing_bytes")

    # ---- invalid: keys ----
    k = last(base, ts_key)
    kb = mp_map(k)
    v.bad("cut in the middle of the last key",
          kb[:len(kb) - len(get(k, ts_key).enc) - 3], "truncated")
    v.bad("key str32 claims ~4 GB",
          mp_map(base[:2], count=3) + b"\xdb\xff\xff\xff\xf0" + b"abc",
          "truncated")
    v.bad("integer key", [(fixint(7), fixint(1))] + base, "bad_key")
    v.bad("nil key", [(nil(), s("x"))] + base, "bad_key")
    v.bad("bin key", [(bin8(b"org_id"), s(ORG))] + base, "bad_key")
    v.bad("array key", [(array([s("a")]), s("x"))] + base, "bad_key")
    v.bad("0xc1 as a key", [(raw(b"\xc1"), fixint(0))] + base, "malformed")
    v.bad("duplicate key " + first,
          base[:1] + base, "duplicate_key", first)
    v.bad("duplicate key org_id, second value invalid",
          base[:2] + [("org_id", fixint(1))] + base[2:],
          "duplicate_key", "org_id")

    # ---- invalid: values in general ----
    v.bad("0xc1 as the value of " + first, put(base, first, raw(b"\xc1")),
          "malformed", first)
    v.bad("0xc1 under an unknown key",
          base[:1] + [("x_extra", raw(b"\xc1"))] + base[1:], "malformed")
    v.bad("0xc1 nested under an unknown key",
          base + [("x_extra", raw(b"\x92\x01\xc1"))], "malformed")
    v.bad("truncated array under an unknown key",
          base + [("x_extra", raw(b"\x93\x01\x02"))], "truncated")
    v.bad("nesting bomb: 40 arrays under an unknown key",
          base[:1] + [("x_bomb", nested_arrays(40))] + base[1:], "too_deep")
    v.bad("33 nested arrays under an unknown key",
          base + [("x_deep", nested_arrays(33))], "too_deep")
    v.bad("nesting bomb: 40 maps under an unknown key",
          base + [("x_bomb", raw(b"\x81\xa1k" * 40 + b"\x00"))], "too_deep")
    for key, ftype, req, _ in fields:
        if req:
            v.bad("missing " + key, drop(base, key), "missing", key)
    v.bad("required %s given nil" % first, put(base, first, nil()),
          "missing", first)
    v.bad("required org_id given nil", put(base, "org_id", nil()),
          "missing", "org_id")
    v.bad("nothing but unknown keys", [("x", fixint(1))], "missing", first)
    v.bad("empty map", b"\x80", "missing", first)
    v.bad("first error wins: bad %s before a missing field" % first,
          put(drop(base, ts_key), first, fixint(3)), "wrong_type", first)

    # ---- invalid: org_id ----
    for why, bad in BAD_UUIDS[:4]:
        v.bad("org_id " + why, put(base, "org_id", s(bad)), "bad_uuid",
              "org_id")
    v.bad("org_id as bin", put(base, "org_id", bin8(ORG.encode())),
          "wrong_type", "org_id")
    v.bad("org_id as an integer", put(base, "org_id", fixint(1)),
          "wrong_type", "org_id")
    v.bad("org_id str32 claims ~4 GB",
          last(base, "org_id")[:-1] + [("org_id",
                                        raw(b"\xdb\xff\xff\xff\xf0" +
                                            ORG[:8].encode()))],
          "truncated", "org_id")
    b = last(base, "org_id")
    bb = mp_map(b)
    v.bad("cut in the middle of the org_id string", bb[:-20], "truncated",
          "org_id")

    # ---- invalid: timestamps ----
    t = last(base, ts_key)
    tb = mp_map(t)
    v.bad("%s timestamp32 cut" % ts_key, tb[:-2], "truncated", ts_key)
    v.bad("%s key with no value" % ts_key,
          tb[:-len(get(t, ts_key).enc)], "truncated", ts_key)
    v.bad("%s milliseconds cut" % ts_key,
          mp_map(put(t, ts_key, ms(T0 * 1000)))[:-4], "truncated", ts_key)
    v.bad("%s timestamp96 cut" % ts_key,
          mp_map(put(t, ts_key, ts96(T0, 1)))[:-6], "truncated", ts_key)
    v.bad("%s ext -1 with 5 bytes" % ts_key,
          put(base, ts_key, ext(-1, b"\x00" + struct.pack(">I", T0))),
          "bad_timestamp", ts_key)
    v.bad("%s fixext1 -1" % ts_key, put(base, ts_key, ext(-1, b"\x01")),
          "bad_timestamp", ts_key)
    v.bad("%s fixext16 -1" % ts_key,
          put(base, ts_key, ext(-1, bytes(8) + struct.pack(">Q", T0))),
          "bad_timestamp", ts_key)
    v.bad("%s timestamp96 nanoseconds 1000000000" % ts_key,
          put(base, ts_key, ts96(T0, 1000000000)), "bad_timestamp", ts_key)
    v.bad("%s timestamp64 nanoseconds 1000000000" % ts_key,
          put(base, ts_key, ts64(T0, 1000000000)), "bad_timestamp", ts_key)
    v.bad("%s timestamp96 nanoseconds ffffffff, year 1970" % ts_key,
          put(base, ts_key, ts96(0, 0xFFFFFFFF)), "bad_timestamp", ts_key)
    v.bad("%s ext type 5 with 4 bytes" % ts_key,
          put(base, ts_key, ext(5, struct.pack(">I", T0))),
          "wrong_type", ts_key)
    v.bad("%s ext type 0 with 8 bytes" % ts_key,
          put(base, ts_key, ext(0, struct.pack(">Q", T0))),
          "wrong_type", ts_key)
    v.bad("%s as an RFC 3339 string" % ts_key,
          put(base, ts_key, s("2026-01-05T10:03:21Z")), "wrong_type", ts_key)
    v.bad("%s as float seconds" % ts_key,
          put(base, ts_key, f64(T0 + 0.5)), "wrong_type", ts_key)
    v.bad("%s as a bool" % ts_key, put(base, ts_key, boolean(True)),
          "wrong_type", ts_key)
    v.bad("%s as an array" % ts_key, put(base, ts_key, array([u32(T0)])),
          "wrong_type", ts_key)
    v.bad("%s 0xc1" % ts_key, put(base, ts_key, raw(b"\xc1")),
          "malformed", ts_key)
    v.bad("%s one second before 2000" % ts_key,
          put(base, ts_key, ts32(TS_MIN - 1)), "out_of_range", ts_key)
    v.bad("%s one millisecond before 2000" % ts_key,
          put(base, ts_key, ms(TS_MIN * 1000 - 1)), "out_of_range", ts_key)
    v.bad("%s 1970 (timestamp32 zero)" % ts_key,
          put(base, ts_key, ts32(0)), "out_of_range", ts_key)
    v.bad("%s 2100-01-01 exactly" % ts_key,
          put(base, ts_key, ts64(TS_MAX, 0)), "out_of_range", ts_key)
    v.bad("%s 2100-01-01 as milliseconds" % ts_key,
          put(base, ts_key, ms(TS_MAX * 1000)), "out_of_range", ts_key)
    v.bad("%s timestamp32 max (2106)" % ts_key,
          put(base, ts_key, ts32(0xFFFFFFFF)), "out_of_range", ts_key)
    v.bad("%s timestamp96 negative seconds" % ts_key,
          put(base, ts_key, ts96(-1, 0)), "out_of_range", ts_key)
    v.bad("%s negative milliseconds" % ts_key,
          put(base, ts_key, ms(-1)), "out_of_range", ts_key)
    v.bad("%s milliseconds in seconds by mistake" % ts_key,
          put(base, ts_key, ms(T0)), "out_of_range", ts_key)
    v.bad("%s uint64 milliseconds above INT64_MAX" % ts_key,
          put(base, ts_key, ms(1 << 63, u64)), "out_of_range", ts_key)
    # Once overflowed while converting to seconds (found by UBSan).
    v.bad("%s int64 milliseconds INT64_MIN" % ts_key,
          put(base, ts_key, i64(-(1 << 63))), "out_of_range", ts_key)
    v.bad("%s int64 milliseconds INT64_MIN + 807" % ts_key,
          put(base, ts_key, i64(-(1 << 63) + 807)), "out_of_range", ts_key)

    # ---- subjects ----
    v.bad("subject org differs from the payload org_id", base,
          "org_mismatch", "org_id", subject=kind + "." + OTHER_ORG)
    v.bad("subject org token is not a UUID", base, "org_mismatch", "org_id",
          subject=kind + ".acme")
    v.bad("payload error reported before the org mismatch",
          drop(base, ts_key), "missing", ts_key,
          subject=kind + "." + OTHER_ORG)


def int_cases(v, base, key, good, bad_values):
    """Every width of each good value, and out-of-range values."""
    for n in good:
        for form, enc in int_widths(n):
            v.ok("%s %d as %s" % (key, n, form), put(base, key, enc))
    for n, enc in bad_values:
        v.bad("%s %d (%s)" % (key, n, enc.enc[:1].hex()), put(base, key, enc),
              "out_of_range", key)
    v.bad("%s uint64 above INT64_MAX" % key,
          put(base, key, u64((1 << 63) + 5)), "out_of_range", key)
    v.bad("%s uint64 max" % key, put(base, key, u64((1 << 64) - 1)),
          "out_of_range", key)
    v.bad("%s as a string" % key, put(base, key, s(str(get(base, key).val))),
          "wrong_type", key)
    v.bad("%s as float64 of a whole number" % key,
          put(base, key, f64(float(get(base, key).val))), "wrong_type", key)
    v.bad("%s as float32" % key, put(base, key, f32(1.0)), "wrong_type", key)
    v.bad("%s as a bool" % key, put(base, key, boolean(True)),
          "wrong_type", key)
    v.bad("%s as nil" % key, put(base, key, nil()), "missing", key)
    v.bad("%s as an ext" % key, put(base, key, ext(0, b"\x01\x02")),
          "wrong_type", key)
    t = last(base, key)
    tb = mp_map(put(t, key, i32(get(base, key).val)))
    v.bad("%s int32 cut after 2 bytes" % key, tb[:-2], "truncated", key)
    v.bad("%s int64 cut" % key,
          mp_map(put(t, key, i64(get(base, key).val)))[:-1], "truncated", key)
    v.bad("%s 0xc1" % key, put(base, key, raw(b"\xc1")), "malformed", key)


def event_id_cases(v, base):
    v.ok("event_id with a space and punctuation",
         put(base, "event_id", s("msg 42/call:end ~!")))
    v.ok("event_id with quote and backslash (JSON escapes)",
         put(base, "event_id", s('evt_"q"\\b')))
    v.ok("event_id of 128 characters", put(base, "event_id", s("e" * 128)))
    v.ok("event_id of 1 character", put(base, "event_id", s("1")))
    v.ok("event_id in str8 form", put(base, "event_id", str8(EVT)))
    v.ok("event_id in str16 form", put(base, "event_id", str16(EVT)))
    v.bad("event_id empty", put(base, "event_id", s("")),
          "bad_event_id", "event_id")
    v.bad("event_id of 129 characters", put(base, "event_id", s("e" * 129)),
          "bad_event_id", "event_id")
    v.bad("event_id with control char 01",
          put(base, "event_id", s("evt_\x01x")), "bad_event_id", "event_id")
    v.bad("event_id with a tab", put(base, "event_id", s("evt\t1")),
          "bad_event_id", "event_id")
    v.bad("event_id with a newline", put(base, "event_id", s("evt_1\n")),
          "bad_event_id", "event_id")
    v.bad("event_id with DEL 7f", put(base, "event_id", s("evt_\x7f")),
          "bad_event_id", "event_id")
    v.bad("event_id with non-ASCII", put(base, "event_id", s("évt_1")),
          "bad_event_id", "event_id")
    v.bad("event_id as an integer", put(base, "event_id", u32(123456)),
          "wrong_type", "event_id")
    v.bad("event_id as bin", put(base, "event_id", bin8(EVT.encode())),
          "wrong_type", "event_id")
    t = last(base, "event_id")
    v.bad("cut in the middle of the event_id string", mp_map(t)[:-10],
          "truncated", "event_id")


def id_cases(v, base, key, value):
    v.ok("%s of 255 characters" % key, put(base, key, s("x" * 255)))
    v.ok("%s in str16 form" % key, put(base, key, str16(value)))
    v.bad("%s with a space" % key, put(base, key, s(value[:6] + " " +
                                                    value[6:])), "bad_id", key)
    v.bad("%s empty" % key, put(base, key, s("")), "bad_id", key)
    v.bad("%s of 256 characters" % key, put(base, key, s("x" * 256)),
          "bad_id", key)
    v.bad("%s with a tab" % key, put(base, key, s(value + "\t")), "bad_id",
          key)
    v.bad("%s with non-ASCII" % key, put(base, key, s(value + "é")),
          "bad_id", key)
    v.bad("%s as an integer" % key, put(base, key, fixint(7)), "wrong_type",
          key)


def uuid_cases(v, base, key):
    for why, bad in BAD_UUIDS:
        v.bad("%s %s" % (key, why), put(base, key, s(bad)), "bad_uuid", key)
    v.bad("%s as bin" % key, put(base, key, bin8(bytes(16))), "wrong_type",
          key)


def phone_cases(v, base, key):
    v.ok("%s shortest (8 digits)" % key, put(base, key, s("+14155550")))
    v.ok("%s longest (15 digits)" % key, put(base, key, s("+447700900123456")))
    for why, bad in BAD_PHONES:
        v.bad("%s %s" % (key, why), put(base, key, s(bad)), "bad_phone", key)
    v.bad("%s as an integer" % key, put(base, key, u64(447700900123)),
          "wrong_type", key)


def enum_cases(v, base, key, choices, bad):
    for c in choices:
        v.ok("%s %s" % (key, c), put(base, key, s(c)))
    v.ok("%s in str8 form" % key, put(base, key, str8(choices[0])))
    for b in bad:
        v.bad("%s %r" % (key, b), put(base, key, s(b)), "bad_enum", key)
    v.bad("%s empty" % key, put(base, key, s("")), "bad_enum", key)
    v.bad("%s as an integer" % key, put(base, key, fixint(1)), "wrong_type",
          key)


def text_cases(v, base, key, limit, nil_ok=True):
    v.ok("%s with JSON escapes" % key, put(base, key, s(ESCAPES)))
    v.ok("%s with multi-byte UTF-8" % key, put(base, key, s(UTF8_TEXT)))
    v.ok("%s edge code points" % key, put(base, key, s(
        "\u0080\u07ff\u0800\ud7ff\ue000\uffff\U00010000\U0010ffff")))
    v.ok("%s empty" % key, put(base, key, s("")))
    v.ok("%s nil (absent)" % key, put(base, key, nil()))
    v.ok("%s in str8 form" % key, put(base, key, str8("Priya Shah")))
    v.ok("%s in str16 form" % key, put(base, key, str16("Priya Shah")))
    v.ok("%s in str32 form" % key, put(base, key, str32("Priya Shah")))
    # the limit is in bytes: 2-byte characters fill it. (transcript's 512 KB
    # limit is left out: a .vec file of megabytes helps nobody)
    if limit <= 16384:
        full = "é" * (limit // 2) + "a" * (limit % 2)
        v.ok("%s at the %d-byte limit" % (key, limit), put(base, key, s(full)))
        v.bad("%s one byte over the limit" % key,
              put(base, key, s(full + "a")), "too_long", key)
        v.bad("%s over the limit and bad UTF-8" % key,
              put(base, key, s(b"\xff" * (limit + 1))), "too_long", key)
    for why, bad in BAD_UTF8:
        v.bad("%s bad UTF-8: %s" % (key, why), put(base, key, s(bad)),
              "bad_utf8", key)
    v.bad("%s with a NUL byte" % key, put(base, key, s(b"Priya\x00Shah")),
          "bad_string", key)
    v.bad("%s NUL before bad UTF-8" % key, put(base, key, s(b"a\x00\xff")),
          "bad_string", key)
    v.bad("%s as an integer" % key, put(base, key, fixint(5)), "wrong_type",
          key)
    v.bad("%s as bin" % key, put(base, key, bin8(b"Priya")), "wrong_type",
          key)
    v.bad("%s as a map" % key, put(base, key, V(mp_map([]), Opaque("map"))),
          "wrong_type", key)
    t = last(put(base, key, s("Priya Shah, boiler")), key)
    v.bad("cut in the middle of %s" % key, mp_map(t)[:-5], "truncated", key)
    v.bad("%s str16 length cut" % key,
          mp_map(put(t, key, raw(b"\xda\x00"))), "truncated", key)
    v.bad("%s 0xc1" % key, put(base, key, raw(b"\xc1")), "malformed", key)


def duplicate_after_nil(v, base, key, value):
    v.bad("%s given nil then again" % key,
          base + [(key, nil()), (key, value)], "duplicate_key", key)


# =============================================================================
# Per-kind cases
# =============================================================================

def call_started():
    v = Vec("call.started")
    base = [
        ("event_id", s(EVT)), ("org_id", s(ORG)), ("call_id", s(CALL)),
        ("direction", s("inbound")), ("from_number", s(PHONE)),
        ("to_number", s(PHONE2)), ("started_at", ts32(T0)),
    ]
    full = [
        ("event_id", s(EVT)), ("org_id", s(ORG)), ("call_id", s(CALL)),
        ("vapi_call_id", s(VAPI)), ("direction", s("inbound")),
        ("from_number", s(PHONE)), ("to_number", s(PHONE2)),
        ("caller_name", s("Priya Shah")), ("contact_id", s(CONTACT)),
        ("started_at", ts64(T0, 250000000)),
    ]
    common(v, base, full)
    v.ok("outbound, optional fields nil",
         put(put(put(put(base, "direction", s("outbound")), "vapi_call_id",
                         nil()), "caller_name", nil()), "contact_id", nil()))
    event_id_cases(v, base)
    id_cases(v, base, "vapi_call_id", VAPI)
    uuid_cases(v, base, "call_id")
    uuid_cases(v, base, "contact_id")
    enum_cases(v, base, "direction", DIRECTIONS,
               ["Inbound", "INBOUND", "in", "inbound "])
    phone_cases(v, base, "from_number")
    phone_cases(v, base, "to_number")
    text_cases(v, base, "caller_name", 200)
    duplicate_after_nil(v, base, "caller_name", s("Priya"))
    v.bad("subject with an extra token", base, "unknown_subject",
          subject="call.started.%s.x" % ORG)
    v.bad("subject of an unknown kind", base, "unknown_subject",
          subject="call.paused." + ORG)
    return v


def call_ended():
    v = Vec("call.ended")
    base = [
        ("event_id", s("vapi-msg-0c4f1e2d9a8b")), ("org_id", s(ORG)),
        ("call_id", s(CALL)), ("ended_at", ts32(T1)),
        ("duration_seconds", u8(187)), ("status", s("completed")),
    ]
    full = [
        ("event_id", s("vapi-msg-0c4f1e2d9a8b")), ("org_id", s(ORG)),
        ("call_id", s(CALL)), ("ended_at", ts64(T1, 900000000)),
        ("duration_seconds", u8(187)), ("status", s("completed")),
        ("direction", s("inbound")), ("from_number", s(PHONE)),
        ("to_number", s(PHONE2)), ("started_at", ts32(T0)),
        ("transcript", s("AI: Hello, Acme Heating.\nCaller: Hi, my boiler "
                         "stopped working this morning.\nAI: I can book an "
                         "engineer for tomorrow at 9am.")),
        ("summary", s("Boiler failure; engineer booked for 9am tomorrow.")),
        ("recording_url", s("https://storage.vapi.ai/rec/6f1d2c3b.wav")),
        ("sentiment_summary", s("Caller was stressed but relieved.")),
        ("sentiment_label", s("positive")), ("sentiment_score", f64(0.87)),
        ("sentiment_urgency", s("high")),
    ]
    common(v, base, full)
    v.ok("failed call of zero seconds",
         put(put(base, "status", s("failed")), "duration_seconds", fixint(0)))
    v.ok("call.ended that creates the call (direction, numbers, started_at)",
         base + [("direction", s("outbound")), ("from_number", s(PHONE2)),
                 ("to_number", s(PHONE)), ("started_at", ms(T0 * 1000 + 1))])
    int_cases(v, base, "duration_seconds", [0, 42, 127, 187, 600, 86400],
              [(86401, u32(86401)), (-1, fixint(-1)), (-1, i64(-1)),
               (-86400, i32(-86400)), (1 << 32, u64(1 << 32))])
    # sentiment_score: float32/64 and integers all read as a double
    for name, enc in [
        ("float64 0.87", f64(0.87)), ("float32 0.5", f32(0.5)),
        ("float32 0.87", f32(0.87)), ("float64 0.1", f64(0.1)),
        ("float64 1/3", f64(1 / 3)), ("float64 0.0", f64(0.0)),
        ("float64 1.0", f64(1.0)), ("float64 -0.0", f64(-0.0)),
        ("float64 smallest subnormal", f64(5e-324)),
        ("integer 1", fixint(1)), ("integer 0", fixint(0)),
        ("integer 1 as int64", i64(1)),
    ]:
        v.ok("sentiment_score " + name, put(base, "sentiment_score", enc))
    for name, enc in [
        ("1.5", f64(1.5)), ("-0.01", f64(-0.01)),
        ("1.0000000000000002", f64(1.0000000000000002)),
        ("NaN float64", f64(float("nan"))), ("NaN float32", f32(float("nan"))),
        ("+inf", f64(float("inf"))), ("-inf float32", f32(float("-inf"))),
        ("integer 2", fixint(2)), ("integer -1", fixint(-1)),
        ("uint64 above INT64_MAX", u64(1 << 63)),
    ]:
        v.bad("sentiment_score " + name, put(base, "sentiment_score", enc),
              "out_of_range", "sentiment_score")
    for name, enc in [("string", s("0.5")), ("bool", boolean(False)),
                      ("array", array([f64(0.5)]))]:
        v.bad("sentiment_score as a " + name,
              put(base, "sentiment_score", enc), "wrong_type",
              "sentiment_score")
    t = last(put(base, "sentiment_score", f64(0.5)), "sentiment_score")
    v.bad("sentiment_score float64 cut", mp_map(t)[:-3], "truncated",
          "sentiment_score")
    v.bad("sentiment_score float32 cut",
          mp_map(put(t, "sentiment_score", f32(0.5)))[:-1], "truncated",
          "sentiment_score")
    v.bad("sentiment_score 0xc1", put(base, "sentiment_score", raw(b"\xc1")),
          "malformed", "sentiment_score")
    v.ok("sentiment_score nil (absent)", put(base, "sentiment_score", nil()))
    event_id_cases(v, base)
    uuid_cases(v, base, "call_id")
    enum_cases(v, base, "status", CALL_STATUSES,
               ["Completed", "cancelled", "complete"])
    enum_cases(v, base, "direction", DIRECTIONS, ["Inbound"])
    enum_cases(v, base, "sentiment_label", SENTIMENTS,
               ["Positive", "mixed"])
    enum_cases(v, base, "sentiment_urgency", URGENCIES, ["urgent", "HIGH"])
    phone_cases(v, base, "from_number")
    v.ok("started_at timestamp96", put(base, "started_at", ts96(T0, 1)))
    v.bad("started_at before 2000", put(base, "started_at", ts32(1)),
          "out_of_range", "started_at")
    v.bad("started_at ext -1 with 6 bytes",
          put(base, "started_at", ext(-1, bytes(6))), "bad_timestamp",
          "started_at")
    v.ok("started_at nil (absent)", put(base, "started_at", nil()))
    text_cases(v, base, "transcript", 512 * 1024)
    v.ok("transcript of many lines (str16)", put(base, "transcript", s(
        "\n".join("AI: line %d of the call, all good." % i
                  for i in range(40)))))
    text_cases(v, base, "summary", 16384)
    text_cases(v, base, "recording_url", 2048)
    text_cases(v, base, "sentiment_summary", 16384)
    duplicate_after_nil(v, base, "summary", s("x"))
    v.bad("first error wins: bad duration before bad status",
          put(put(base, "duration_seconds", u32(90000)), "status",
              s("done")), "out_of_range", "duration_seconds")
    return v


def payment_succeeded():
    v = Vec("payment.succeeded")
    base = [
        ("event_id", s(EVT)), ("org_id", s(ORG)),
        ("stripe_payment_intent_id", s(PI)), ("amount_pence", u16(4999)),
        ("occurred_at", ts32(T0)),
    ]
    full = base[:4] + [("description", s("Wallet top-up £49.99")),
                       ("occurred_at", ts64(T0, 1000))]
    common(v, base, full)
    int_cases(v, base, "amount_pence", [1, 127, 128, 4999, 100000000],
              [(0, fixint(0)), (0, u64(0)), (100000001, u32(100000001)),
               (-500, i16(-500)), (-1, fixint(-1))])
    event_id_cases(v, base)
    id_cases(v, base, "stripe_payment_intent_id", PI)
    text_cases(v, base, "description", 1000)
    duplicate_after_nil(v, base, "description", s("x"))
    v.bad("duplicate key amount_pence", base + [("amount_pence", u8(1))],
          "duplicate_key", "amount_pence")
    v.bad("amount_pence as a decimal float", put(base, "amount_pence",
                                                f64(49.99)),
          "wrong_type", "amount_pence")
    return v


def payment_refunded():
    v = Vec("payment.refunded")
    base = [
        ("event_id", s("evt_3Ab9RfNdLkPq2Zx0Yw1Vu2Ts")), ("org_id", s(ORG)),
        ("stripe_refund_id", s(RE_ID)), ("stripe_payment_intent_id", s(PI)),
        ("amount_pence", u16(1500)), ("occurred_at", ts32(T1)),
    ]
    # no optional fields: "full" is the minimal message with nanoseconds
    full = put(base, "occurred_at", ts64(T1, 999))
    common(v, base, full)
    int_cases(v, base, "amount_pence", [1, 255, 1500, 70000, 100000000],
              [(0, fixint(0)), (100000001, u32(100000001)),
               (-1500, i16(-1500)), (-(1 << 63), i64(-(1 << 63)))])
    event_id_cases(v, base)
    id_cases(v, base, "stripe_refund_id", RE_ID)
    id_cases(v, base, "stripe_payment_intent_id", PI)
    v.bad("payment intent id under a misspelt key (trailing space)",
          drop(base, "stripe_payment_intent_id") +
          [("stripe_payment_intent_id ", s(PI))], "missing",
          "stripe_payment_intent_id")
    return v


def lead_scored():
    v = Vec("lead.scored")
    base = [
        ("event_id", s("score-2026-01-05-0001")), ("org_id", s(ORG)),
        ("contact_id", s(CONTACT)), ("lead_score", fixint(86)),
        ("scored_at", ts32(T1 + 30)),
    ]
    full = [
        ("event_id", s("score-2026-01-05-0001")), ("org_id", s(ORG)),
        ("contact_id", s(CONTACT)), ("phone", s(PHONE)),
        ("call_id", s(CALL)), ("lead_score", fixint(86)),
        ("lead_status", s("hot")), ("lead_name", s("Priya Shah")),
        ("service_interest", s("Boiler service")),
        ("summary", s("Ready to book; asked for the earliest slot.")),
        ("scored_at", ts64(T1 + 30, 123456000)),
    ]
    common(v, base, full)
    by_phone = base[:2] + [("phone", s(PHONE))] + base[3:]
    v.ok("phone without contact_id", by_phone)
    v.ok("contact_id nil, phone given", base[:2] + [
        ("contact_id", nil()), ("phone", s(PHONE))] + base[3:])
    v.ok("phone nil, contact_id given", base[:3] + [("phone", nil())]
         + base[3:])
    v.ok("both contact_id and phone", base[:3] + [("phone", s(PHONE))]
         + base[3:])
    v.bad("neither contact_id nor phone", drop(base, "contact_id"),
          "missing", "contact_id")
    v.bad("contact_id and phone both nil", base[:2] + [
        ("contact_id", nil()), ("phone", nil())] + base[3:],
        "missing", "contact_id")
    v.bad("neither, and lead_score missing: required first",
          drop(base, "contact_id", "lead_score"), "missing", "lead_score")
    v.bad("phone bad and no contact_id", put(by_phone, "phone", s("07700")),
          "bad_phone", "phone")
    int_cases(v, base, "lead_score", [0, 40, 69, 70, 100],
              [(101, fixint(101)), (101, u16(101)), (-1, fixint(-1)),
               (-100, i8(-100)), (255, u8(255)), (86000, u32(86000))])
    v.bad("lead_score as a float 86.0", put(base, "lead_score", f32(86.0)),
          "wrong_type", "lead_score")
    event_id_cases(v, base)
    uuid_cases(v, base, "contact_id")
    uuid_cases(v, base, "call_id")
    phone_cases(v, by_phone, "phone")
    enum_cases(v, base, "lead_status", LEAD_STATUSES,
               ["HOT", "Hot", "qualified"])
    text_cases(v, base, "lead_name", 200)
    text_cases(v, base, "service_interest", 1000)
    text_cases(v, base, "summary", 16384)
    duplicate_after_nil(v, base, "call_id", s(CALL))
    v.bad("duplicate key contact_id", base[:3] + [("contact_id",
                                                   s(CONTACT))] + base[3:],
          "duplicate_key", "contact_id")
    return v


def alert_hot_lead():
    v = Vec("alert.hot_lead")
    base = [
        ("alert_id", s(ALERT)), ("org_id", s(ORG)), ("contact_id", s(CONTACT)),
        ("lead_score", fixint(86)), ("urgency_level", s("high")),
        ("created_at", ts32(T1 + 31)),
    ]
    full = [  # the example in subjects/alert.hot_lead.md
        ("alert_id", s(ALERT)), ("org_id", s(ORG)), ("contact_id", s(CONTACT)),
        ("call_id", s(CALL)), ("lead_name", s("Priya Shah")),
        ("lead_phone", s(PHONE)), ("lead_score", fixint(86)),
        ("urgency_level", s("high")),
        ("service_interest", s("Boiler service")),
        ("summary", s("Ready to book; asked for the earliest slot.")),
        ("created_at", ts64(T1 + 31, 123456000)),
    ]
    common(v, base, full)
    v.ok("call_id nil: the lead had no call",
         base[:3] + [("call_id", nil())] + base[3:])
    v.ok("medium urgency at the threshold score 70",
         put(put(base, "lead_score", fixint(70)), "urgency_level",
             s("medium")))
    int_cases(v, base, "lead_score", [70, 80, 86, 100],
              [(101, fixint(101)), (-1, fixint(-1)), (200, u8(200)),
               (1 << 40, u64(1 << 40))])
    uuid_cases(v, base, "alert_id")
    v.bad("alert_id is an event id, not a UUID",
          put(base, "alert_id", s(EVT)), "bad_uuid", "alert_id")
    v.bad("alert_id as an integer", put(base, "alert_id", u32(12345)),
          "wrong_type", "alert_id")
    uuid_cases(v, base, "contact_id")
    uuid_cases(v, base, "call_id")
    phone_cases(v, base, "lead_phone")
    enum_cases(v, base, "urgency_level", URGENCIES, ["High", "urgent"])
    text_cases(v, base, "lead_name", 200)
    text_cases(v, base, "service_interest", 1000)
    text_cases(v, base, "summary", 16384)
    duplicate_after_nil(v, base, "lead_phone", s(PHONE))
    return v


def alert_wallet(kind, amount_key, amount):
    v = Vec(kind)
    base = [
        ("alert_id", s(ALERT)), ("org_id", s(ORG)),
        ("balance_pence", i16(-2500)), ("debt_limit_pence", u16(5000)),
        (amount_key, amount), ("created_at", ts32(T1 + 2)),
    ]
    full = base[:5] + [("call_id", s(CALL)),
                       ("created_at", ts64(T1 + 2, 5000))]
    common(v, base, full)
    v.ok("call_id nil (absent)", base[:5] + [("call_id", nil())] + base[5:])
    int_cases(v, base, "balance_pence",
              [INT64_MIN, -1000000001, -150000, -2500, -129, -128, -100, -33,
               -32, -5, 0, 250, 1000000001, 1 << 40, INT64_MAX], [])
    int_cases(v, base, "debt_limit_pence",
              [0, 5000, 100000001, 5000000000, INT64_MAX],
              [(-1, fixint(-1)), (-5000, i16(-5000)),
               (INT64_MIN, i64(INT64_MIN))])
    int_cases(v, base, amount_key, [0, 1000, 1000000001, 1 << 40, INT64_MAX],
              [(-1, fixint(-1)), (-1000, i16(-1000)),
               (INT64_MIN, i64(INT64_MIN))])
    uuid_cases(v, base, "alert_id")
    uuid_cases(v, base, "call_id")
    duplicate_after_nil(v, base, "call_id", s(CALL))
    v.bad("balance_pence as a float", put(base, "balance_pence", f64(-25.0)),
          "wrong_type", "balance_pence")
    other = ("shortfall_pence" if amount_key == "threshold_pence"
             else "threshold_pence")
    v.bad("%s given instead of %s (unknown key)" % (other, amount_key),
          [(other if k == amount_key else k, x) for k, x in base],
          "missing", amount_key)
    return v


# =============================================================================
# Requests: bodies of query.*, billing.authorize and credentials.*, each
# accepted or refused with a code and a field (the JSON form only).
# =============================================================================

def requests():
    cases = []

    def hexof(data):  # bytes, or a value of the writer above
        return (data.enc if hasattr(data, "enc") else bytes(data)).hex()

    def ok(subject, name, data):
        cases.append({"subject": subject, "name": name, "hex": hexof(data),
                      "accepted": True})

    def bad(subject, name, data, code, field=None):
        cases.append({"subject": subject, "name": name, "hex": hexof(data),
                      "error": {"code": code, "field": field}})

    m = mp_map
    for subj in ("query.wallet", "query.calls", "billing.authorize",
                 "credentials.list"):
        ok(subj, "no body at all is {}", b"")
        ok(subj, "an empty map", m([]))
        ok(subj, "an unknown key is skipped", m([("colour", s("blue"))]))
        bad(subj, "an array is not a request", array([fixint(1)]), "not_a_map")
        bad(subj, "bytes after the map", m([]) + b"\x00", "trailing_bytes")
        bad(subj, "a key that is not a string", b"\x81\x01\x02", "bad_key")
    ok("query.calls", "limit 100", m([("limit", fixint(100))]))
    bad("query.calls", "limit 0", m([("limit", fixint(0))]), "out_of_range", "limit")
    bad("query.calls", "limit 101", m([("limit", fixint(101))]), "out_of_range", "limit")
    bad("query.calls", "limit as a string", m([("limit", s("5"))]), "wrong_type", "limit")
    bad("query.calls", "limit twice", m([("limit", fixint(5)), ("limit", fixint(6))]),
        "duplicate_key", "limit")
    ok("query.calls", "status and direction",
       m([("status", s("completed")), ("direction", s("inbound"))]))
    bad("query.calls", "a status of no call", m([("status", s("done"))]), "bad_enum", "status")
    ok("query.calls", "since as a timestamp", m([("since", ts64(T0))]))
    ok("query.calls", "since as integer milliseconds", m([("since", u64(T0 * 1000))]))
    bad("query.calls", "since as text", m([("since", s("2026-01-05T10:03:21Z"))]),
        "wrong_type", "since")
    bad("query.calls", "a cursor that is not one", m([("before", s("garbage"))]),
        "bad_cursor", "before")
    ok("query.wallet", "limit is not a key of query.wallet: skipped",
       m([("limit", fixint(0))]))
    ok("query.call", "a call id", m([("call_id", s(CALL))]))
    bad("query.call", "a call id that is not a UUID", m([("call_id", s("call-1"))]),
        "bad_uuid", "call_id")
    ok("query.contact", "a phone", m([("phone", s(PHONE))]))
    bad("query.contact", "a phone that is not E.164", m([("phone", s("07700 900123"))]),
        "bad_phone", "phone")
    ok("billing.authorize", "a call id", m([("call_id", s(CALL))]))
    ok("billing.authorize", "a hold for a call", m([("call_id", s(CALL)), ("hold", boolean(True))]))
    ok("billing.authorize", "hold false needs no call", m([("hold", boolean(False))]))
    bad("billing.authorize", "a hold without its call", m([("hold", boolean(True))]),
        "missing", "call_id")
    bad("billing.authorize", "hold as a string", m([("hold", s("yes"))]),
        "wrong_type", "hold")
    bad("billing.authorize", "a call id that is not a UUID",
        m([("call_id", s("x"))]), "bad_uuid", "call_id")
    ok("credentials.get", "provider, type and a reply key",
       m([("provider", s("twilio")), ("type", s("default")),
          ("reply_key", bin8(bytes(range(32))))]))
    bad("credentials.get", "a provider vox does not know",
        m([("provider", s("nope"))]), "bad_enum", "provider")
    bad("credentials.get", "a reply key of 31 bytes",
        m([("provider", s("twilio")), ("reply_key", bin8(bytes(31)))]),
        "bad_length", "reply_key")
    bad("credentials.get", "a reply key as text",
        m([("provider", s("twilio")), ("reply_key", s("k" * 32))]),
        "wrong_type", "reply_key")
    ok("credentials.put", "a config as text",
       m([("provider", s("stripe")), ("config", s('{"key":"sk_test"}'))]))
    return cases


def reply_vectors():
    """Replies as vox writes them (widths as small as they fit, a row's
    NULL columns left out, timestamps as ext -1), and their JSON form:
    for a client's decoder."""
    m = mp_map

    def case(subject, name, pairs, js):
        return {"subject": subject, "name": name, "hex": m(pairs).hex(), "json": js}

    call_row = [("id", s(CALL)), ("org_id", s(ORG)), ("call_direction", s("inbound")),
                ("from_number", s(PHONE)), ("to_number", s(PHONE2)),
                ("duration_seconds", u8(187)), ("status", s("completed")),
                ("sentiment_score", f64(0.75)), ("created_at", ts32(T0)),
                ("ended_at", ts64(T1, 250000000))]
    call_json = {"id": CALL, "org_id": ORG, "call_direction": "inbound",
                 "from_number": PHONE, "to_number": PHONE2, "duration_seconds": 187,
                 "status": "completed", "sentiment_score": 0.75,
                 "created_at": "2026-01-05T10:03:21.000000000Z",
                 "ended_at": "2026-01-05T10:06:28.250000000Z"}
    return [
        case("query.wallet", "a wallet in debt", [
            ("balance_pence", i16(-430)), ("debt_limit_pence", u16(500)),
            ("available_pence", fixint(70)), ("in_debt", boolean(True)),
            ("unbilled_pence", fixint(0)), ("low_balance_pence", u16(1000)),
            ("rate_per_minute", fixint(70)), ("minutes_remaining", fixint(1)),
            ("held_pence", fixint(0))],
            {"balance_pence": -430, "debt_limit_pence": 500, "available_pence": 70,
             "in_debt": True, "unbilled_pence": 0, "low_balance_pence": 1000,
             "rate_per_minute": 70, "minutes_remaining": 1, "held_pence": 0}),
        case("query.calls", "a page of one call, the last", [
            ("items", array([V(m(call_row))])), ("next", nil())],
            {"items": [call_json], "next": None}),
        case("query.call", "one call", call_row, call_json),
        case("billing.authorize", "refused", [
            ("allowed", boolean(False)), ("reason", s("not enough credit for a minute")),
            ("available_pence", fixint(69)), ("held_pence", fixint(0))],
            {"allowed": False, "reason": "not enough credit for a minute",
             "available_pence": 69, "held_pence": 0}),
        case("billing.authorize", "a hold placed", [
            ("allowed", boolean(True)), ("reason", s("ok")),
            ("available_pence", i16(-280)), ("held_pence", u16(350)),
            ("hold", s("placed"))],
            {"allowed": True, "reason": "ok", "available_pence": -280,
             "held_pence": 350, "hold": "placed"}),
        case("credentials.delete", "nothing to delete", [("deleted", boolean(False))],
             {"deleted": False}),
    ]


def error_replies():
    """What a client makes of an error reply's headers (the body is
    empty): its code, reason, field and text. Replies without the code
    header are not errors, whatever else they carry."""
    def case(name, headers, error):
        return {"name": name, "headers": headers, "error": error}

    return [
        case("a refused field", {
            "Nats-Service-Error": "limit: must be 1..100",
            "Nats-Service-Error-Code": "400", "Vox-Error-Reason": "out_of_range",
            "Vox-Error-Field": "limit"},
            {"code": 400, "reason": "out_of_range", "field": "limit",
             "message": "limit: must be 1..100"}),
        case("an unknown org: no field", {
            "Nats-Service-Error": "no such organization",
            "Nats-Service-Error-Code": "404", "Vox-Error-Reason": "unknown_org"},
            {"code": 404, "reason": "unknown_org", "field": "",
             "message": "no such organization"}),
        case("the database away: retry later", {
            "Nats-Service-Error": "database unavailable",
            "Nats-Service-Error-Code": "503", "Vox-Error-Reason": "unavailable"},
            {"code": 503, "reason": "unavailable", "field": "",
             "message": "database unavailable"}),
        case("a request over the limit", {
            "Nats-Service-Error": "request of 5000 bytes is over the 4096 byte limit",
            "Nats-Service-Error-Code": "413", "Vox-Error-Reason": "too_large"},
            {"code": 413, "reason": "too_large", "field": "",
             "message": "request of 5000 bytes is over the 4096 byte limit"}),
        case("an older responder: code and text only", {
            "Nats-Service-Error": "internal error", "Nats-Service-Error-Code": "500"},
            {"code": 500, "reason": "", "field": "", "message": "internal error"}),
        case("a success: no code header", {"Vox-Schema": "1"}, None),
    ]


def main():
    # the output directory: this one, or argv[1] (the freshness test)
    here = (sys.argv[1] if len(sys.argv) > 1
            else os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(os.path.join(here, "json"), exist_ok=True)
    vecs = [
        call_started(), call_ended(), payment_succeeded(), payment_refunded(),
        lead_scored(), alert_hot_lead(),
        alert_wallet("alert.low_balance", "threshold_pence", u16(10000)),
        alert_wallet("alert.debt_limit", "shortfall_pence", u16(1200)),
    ]
    for v in vecs:
        valid = sum(1 for c in v.cases if "error" not in c)
        canon = sum(1 for c in v.cases if c.get("canonical"))
        assert canon >= 1, v.kind + ": no canonical case"
        v.write(os.path.join(here, v.kind + ".vec"))
        v.write_json(os.path.join(here, "json", v.kind + ".json"))
        print("%-20s %3d valid (%d canonical) %3d invalid" % (
            v.kind + ".vec", valid, canon, len(v.cases) - valid))
    reqs = requests()
    with open(os.path.join(here, "json", "requests.json"), "w", encoding="utf-8") as f:
        json.dump({"format": "vox-request-vectors/1",
                   "note": "written by generate.py, do not edit",
                   "cases": reqs}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(here, "json", "replies.json"), "w", encoding="utf-8") as f:
        json.dump({"format": "vox-reply-vectors/1",
                   "note": "written by generate.py, do not edit",
                   "cases": reply_vectors()}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(here, "json", "error_replies.json"), "w",
              encoding="utf-8") as f:
        json.dump({"format": "vox-error-reply-vectors/1",
                   "note": "written by generate.py, do not edit",
                   "cases": error_replies()}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("%-20s %3d accepted %3d refused" % (
        "json/requests.json", sum(1 for c in reqs if "accepted" in c),
        sum(1 for c in reqs if "error" in c)))


if __name__ == "__main__":
    main()
