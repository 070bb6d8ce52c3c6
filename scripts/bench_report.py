#!/usr/bin/env python3
"""The report of one `scripts/bench.sh all` run.

    bench_report.py [--quick] LINES.jsonl OUTDIR

LINES.jsonl holds every JSON line the run printed (one object per line).
Writes OUTDIR/report.json (the lines, the ratios and the targets),
OUTDIR/report.md (the figures, each target of issue #10 with PASS or MISS,
the ratios) and OUTDIR/report.png (gnuplot: throughput per scenario and
query latency percentiles; skipped, and said so, without gnuplot).

Every ratio is made of figures from the same run: absolute figures drift on
shared machines, ratios much less. Standard library only.
"""
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

MB_KB = 1024  # peak RSS is reported by the kernel in KiB


def load(path):
    rows, bad = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(obj, dict):
                rows.append(obj)
            else:
                bad += 1
    return rows, bad


def num(row, *keys):
    """The first numeric field of row among keys, else None."""
    if not row:
        return None
    for k in keys:
        v = row.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def ok(row):
    return row is not None and "error" not in row


def pick(rows, pred):
    for r in rows:
        if pred(r):
            return r
    return None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(v, digits=1):
    if v is None:
        return "not measured"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def classify(rows):
    s = {}
    s["e2e"] = pick(rows, lambda r: r.get("scenario") == "e2e-calls"
                    and not num(r, "offered_rps"))
    s["latency"] = pick(rows, lambda r: r.get("scenario") == "e2e-calls"
                        and (num(r, "offered_rps") or 0) > 0)
    s["hot"] = pick(rows, lambda r: r.get("scenario") == "hot-org")
    s["limit"] = pick(rows, lambda r: r.get("scenario") == "limit")
    s["baseline"] = pick(rows, lambda r: r.get("scenario") == "baseline-seed")
    s["echo"] = pick(rows, lambda r: r.get("scenario") == "query"
                     and r.get("target") == "echo")
    s["q_fixed"] = pick(rows, lambda r: r.get("scenario") == "query"
                        and r.get("target") != "echo"
                        and r.get("mode") == "fixed")
    s["q_sat"] = pick(rows, lambda r: r.get("scenario") == "query"
                      and r.get("target") != "echo"
                      and r.get("mode") == "saturation")
    s["memory"] = [r for r in rows if r.get("scenario") == "memory"]
    s["errors"] = [r for r in rows if "error" in r]
    return s


def calls_per_s(row, per_call_key):
    """Calls fully processed per second: e2e counts two events per call
    (call.started + call.ended), the baseline one per call."""
    v = num(row, per_call_key)
    if v is not None:
        return v
    if row is None:
        return None
    if per_call_key == "call_ended_per_s":
        ev = num(row, "events_per_s")
        return ev / 2 if ev is not None else None
    return num(row, "events_per_s")


def build(rows, quick):
    s = classify(rows)
    e2e, hot, lim, base = s["e2e"], s["hot"], s["limit"], s["baseline"]
    e2e_eps = num(e2e, "events_per_s") if ok(e2e) else None
    hot_eps = num(hot, "events_per_s") if ok(hot) else None
    lim_eps = num(lim, "events_per_s") if ok(lim) else None
    e2e_cps = calls_per_s(e2e, "call_ended_per_s") if ok(e2e) else None
    base_cps = calls_per_s(base, "calls_per_s") if ok(base) else None
    base_eps = num(base, "events_per_s") if ok(base) else None

    ratios = {
        # per call: call.ended fully processed by both actors vs calls
        # deducted by the per-event design (the like-for-like unit)
        "e2e_calls_over_baseline_seed": ratio(e2e_cps, base_cps),
        # per event as printed (e2e counts call.started too): for reference
        "e2e_calls_over_baseline_seed_per_event": ratio(e2e_eps, base_eps),
        "hot_org_over_e2e_calls": ratio(hot_eps, e2e_eps),
        "e2e_calls_over_limit": ratio(e2e_eps, lim_eps),
    }
    lat = s["latency"] if ok(s["latency"]) else None
    qf = s["q_fixed"] if ok(s["q_fixed"]) else None
    echo = s["echo"] if ok(s["echo"]) else None
    q_p99_ms = num(qf, "p99_us") / 1000 if num(qf, "p99_us") is not None else None
    echo_p99_ms = (num(echo, "p99_us") / 1000
                   if num(echo, "p99_us") is not None else None)
    ratios["query_p99_over_echo_p99"] = ratio(q_p99_ms, echo_p99_ms)

    mem = [m for m in s["memory"] if num(m, "peak_rss_kb") is not None]
    peak = {}
    for m in mem:
        a = m.get("actor", "?")
        peak[a] = max(peak.get(a, 0), num(m, "peak_rss_kb"))
    mem_missing = [m for m in s["memory"] if num(m, "peak_rss_kb") is None]
    worst = max(peak.values()) / MB_KB if peak else None
    worst_actor = max(peak, key=peak.get) if peak else None

    def target(name, measured, unit, cmp, limit, note=""):
        if measured is None:
            verdict = "NOT MEASURED"
        elif cmp == ">=":
            verdict = "PASS" if measured >= limit else "MISS"
        else:
            verdict = "PASS" if measured < limit else "MISS"
        return {"target": name, "measured": measured, "unit": unit,
                "cmp": cmp, "limit": limit, "verdict": verdict, "note": note}

    targets = [
        target("e2e-calls events/s fully processed", e2e_eps, "events/s",
               ">=", 20000, "call.started + call.ended, committed by both "
               "vox-calls and vox-billing (checked with SQL)"),
        target("e2e-calls / baseline-seed", ratios["e2e_calls_over_baseline_seed"],
               "x", ">=", 8, "per call: call.ended/s vs baseline calls/s"),
        target("e2e-calls / limit", ratios["e2e_calls_over_limit"], "x", ">=",
               0.5, "events/s vs events/s"),
        target("hot-org / e2e-calls", ratios["hot_org_over_e2e_calls"], "x",
               ">=", 0.7, "events/s vs events/s"),
        target("p99 publish-to-commit at 5,000 events/s offered",
               num(lat, "p99_ms"), "ms", "<", 50,
               (f"{fmt(num(lat, 'offered_rps'), 0)} call.ended/s offered"
                + (f" ({fmt(num(lat, 'offered_events_per_s'), 0)} events/s with"
                   " their call.started)"
                   if num(lat, "offered_events_per_s") else "")
                + f", {fmt(num(lat, 'samples'), 0)} samples") if lat else ""),
        target("query.wallet p99 at 2,000/s", q_p99_ms, "ms", "<", 2,
               f"echo baseline p99 {fmt(echo_p99_ms, 3)} ms" if echo else ""),
        target("every actor's peak RSS", worst, "MB", "<", 32,
               f"largest: {worst_actor}" if worst_actor else ""),
    ]
    if mem_missing and targets[-1]["verdict"] == "PASS":
        targets[-1]["verdict"] = "NOT MEASURED"
        targets[-1]["note"] += "; some actor exited before it was sampled"
    return s, ratios, targets, peak


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def gnuplot(outdir, s):
    """report.png, or the reason there is none."""
    gp = shutil.which("gnuplot")
    if not gp:
        return None, "gnuplot is not installed (scripts/deps.sh installs gnuplot-nox): no chart"
    bars = []
    for label, key, field in (("e2e-calls", "e2e", "events_per_s"),
                              ("hot-org", "hot", "events_per_s"),
                              ("limit", "limit", "events_per_s"),
                              ("baseline-seed", "baseline", "events_per_s")):
        row = s[key]
        v = num(row, field) if ok(row) else None
        bars.append((label, v if v is not None else 0))
    lats = []
    for label, key in (("echo 2000/s", "echo"), ("wallet 2000/s", "q_fixed"),
                       ("wallet saturation", "q_sat")):
        row = s[key] if ok(s[key]) else None
        vals = [num(row, k) for k in ("p50_us", "p99_us", "p999_us")]
        lats.append((label, [v / 1000 if v is not None else 0 for v in vals]))
    thr = os.path.join(outdir, "throughput.dat")
    lat = os.path.join(outdir, "latency.dat")
    with open(thr, "w", encoding="utf-8") as f:
        for label, v in bars:
            f.write(f'"{label}" {v:.1f}\n')
    with open(lat, "w", encoding="utf-8") as f:
        for label, vals in lats:
            f.write(f'"{label}" {vals[0]:.4f} {vals[1]:.4f} {vals[2]:.4f}\n')
    png = os.path.join(outdir, "report.png")
    script = f"""
set terminal png size 1200,500 noenhanced
set output '{png}'
set multiplot layout 1,2 title 'vox-bench (one run; absolute figures drift, ratios less)'
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set grid ytics
set yrange [0:*]
set xtics rotate by -20
set title 'throughput (events/s; baseline-seed: calls/s)'
unset key
plot '{thr}' using 2:xtic(1) lc rgb '#3b6ea8'
set title 'query latency (ms)'
set style histogram clustered gap 1
set key top left
plot '{lat}' using 2:xtic(1) title 'p50' lc rgb '#6aa84f', \\
     '' using 3 title 'p99' lc rgb '#e69138', \\
     '' using 4 title 'p99.9' lc rgb '#cc0000'
unset multiplot
"""
    try:
        r = subprocess.run([gp], input=script, text=True, capture_output=True,
                           timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"gnuplot failed ({e}): no chart"
    finally:
        for p in (thr, lat):
            try:
                os.unlink(p)
            except OSError:
                pass
    if r.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) == 0:
        return None, f"gnuplot failed: {r.stderr.strip()[:300]}: no chart"
    return png, None


def markdown(s, ratios, targets, peak, quick, png, png_note, bad, when):
    L = []
    L.append("# vox-bench report")
    L.append("")
    L.append(f"{when} · `scripts/bench.sh all{' --quick' if quick else ''}` · "
             f"{os.cpu_count()} CPUs · {platform.platform()}")
    L.append("")
    L.append("Every figure below comes from this one run, on private servers "
             "(nats-server with JetStream, PostgreSQL with fsync "
             f"{os.environ.get('VOX_BENCH_FSYNC', 'on')}) on the "
             "same machine as the load. Absolute figures drift on shared "
             "machines: the ratios are the headline.")
    if quick:
        L.append("")
        L.append("**Quick run** (4,000 calls per pipeline scenario, 3 s query "
                 "runs): a check that the suite works, not the standard "
                 "figures.")
    L.append("")
    L.append("## Targets (issue #10)")
    L.append("")
    rows = []
    for t in targets:
        unit = t["unit"]
        m = fmt(t["measured"], 2 if unit in ("x", "ms") else 1)
        if t["measured"] is not None and unit != "x":
            m += f" {unit}"
        elif t["measured"] is not None:
            m += "x"
        lim = f"{t['cmp']} {t['limit']:g}{'x' if unit == 'x' else ' ' + unit}"
        verdict = f"**{t['verdict']}**"
        rows.append((t["target"], lim, m, verdict, t["note"]))
    L.append(table(("target", "wanted", "measured", "verdict", "how"), rows))
    missed = [t["target"] for t in targets if t["verdict"] != "PASS"]
    L.append("")
    if missed:
        L.append("Missed or not measured in this run: " + "; ".join(missed) + ".")
    else:
        L.append("Every target is met in this run.")
    L.append("")
    L.append("## Ratios (same run)")
    L.append("")
    L.append(table(("ratio", "value", "unit"), [
        ("e2e-calls / baseline-seed", fmt(ratios["e2e_calls_over_baseline_seed"], 2),
         "call.ended fully processed per s / baseline calls per s"),
        ("e2e-calls / baseline-seed, per event as printed",
         fmt(ratios["e2e_calls_over_baseline_seed_per_event"], 2),
         "e2e events/s (started + ended) / baseline calls/s: twice the above, for reference"),
        ("hot-org / e2e-calls", fmt(ratios["hot_org_over_e2e_calls"], 2), "events/s"),
        ("e2e-calls / limit", fmt(ratios["e2e_calls_over_limit"], 2), "events/s"),
        ("query.wallet p99 / echo p99 at 2,000/s",
         fmt(ratios["query_p99_over_echo_p99"], 2),
         "vox-query's round trip over the bare NATS round trip"),
    ]))
    L.append("")
    L.append("## Pipeline")
    L.append("")
    prow = []
    for label, key in (("e2e-calls (1,000 orgs)", "e2e"), ("hot-org (1 org)", "hot"),
                       ("e2e-calls at 5,000 events/s offered", "latency"),
                       ("limit (trivial consumer)", "limit"),
                       ("baseline-seed (8 conns)", "baseline")):
        r = s[key]
        if r is None:
            prow.append((label, "not run", "", "", "", "", ""))
            continue
        if "error" in r:
            prow.append((label, f"failed: {r['error']}", "", "", "", "", ""))
            continue
        if key == "baseline":
            per_call = calls_per_s(r, "calls_per_s")
        elif key == "limit":
            per_call = None
        else:
            per_call = calls_per_s(r, "call_ended_per_s")
        prow.append((label, fmt(num(r, "events"), 0), fmt(num(r, "seconds"), 2),
                     fmt(num(r, "events_per_s")),
                     fmt(per_call) if per_call is not None else "",
                     fmt(num(r, "p50_ms"), 2) if num(r, "p50_ms") is not None else "",
                     fmt(num(r, "p99_ms"), 2) if num(r, "p99_ms") is not None else ""))
    L.append(table(("scenario", "events", "seconds", "events/s", "calls/s",
                    "p50 ms", "p99 ms"), prow))
    L.append("")
    L.append("e2e events are call.started + call.ended (two per call), counted "
             "when both actors have committed them, checked with SQL; latency "
             "is publish to commit of a sample of call.ended. baseline-seed "
             "events are calls (one transaction each).")
    L.append("")
    L.append("## query.wallet")
    L.append("")
    qrow = []
    for label, key in (("echo baseline, 2,000/s", "echo"),
                       ("query.wallet 2,000/s (2 conns / 2 workers)", "q_fixed"),
                       ("query.wallet saturation (2/2)", "q_sat")):
        r = s[key]
        if not ok(r):
            qrow.append((label, "not measured", "", "", "", "", ""))
            continue
        qrow.append((label, fmt(num(r, "achieved_rps")),
                     fmt(num(r, "p50_us") / 1000, 3),
                     fmt(num(r, "p99_us") / 1000, 3),
                     fmt(num(r, "p999_us") / 1000, 3),
                     fmt(num(r, "errors"), 0), fmt(num(r, "timeouts"), 0)))
    L.append(table(("run", "achieved/s", "p50 ms", "p99 ms", "p99.9 ms",
                    "errors", "timeouts"), qrow))
    L.append("")
    L.append("## Memory (peak RSS, VmHWM, at the end of each run)")
    L.append("")
    mrow = []
    for m in s["memory"]:
        kb = num(m, "peak_rss_kb")
        mrow.append((m.get("actor", "?"), m.get("during", ""),
                     f"{kb / MB_KB:.1f} MB" if kb is not None
                     else f"not measured ({m.get('error', '')})"))
    L.append(table(("actor", "during", "peak RSS"), mrow))
    L.append("")
    if s["errors"]:
        L.append("## Failures")
        L.append("")
        for r in s["errors"]:
            L.append(f"- {r.get('scenario', '?')}: {r.get('error')}")
        L.append("")
    if bad:
        L.append(f"{bad} line(s) of the run were not JSON objects and were ignored.")
        L.append("")
    L.append("## Chart")
    L.append("")
    if png:
        L.append("![throughput and latency](report.png)")
    else:
        L.append(png_note)
    L.append("")
    L.append("Rerun: `make bench` (standard) or `scripts/bench.sh all --quick` "
             "after `make build`. Raw lines: report.json.")
    L.append("")
    return "\n".join(L)


def main(argv):
    args = [a for a in argv[1:] if a != "--quick"]
    quick = "--quick" in argv[1:]
    if len(args) != 2:
        print("usage: bench_report.py [--quick] LINES.jsonl OUTDIR", file=sys.stderr)
        return 2
    rows, bad = load(args[0])
    outdir = args[1]
    os.makedirs(outdir, exist_ok=True)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    s, ratios, targets, peak = build(rows, quick)
    png_path = os.path.join(outdir, "report.png")
    if os.path.exists(png_path):
        os.unlink(png_path)  # never leave a chart of another run
    png, png_note = gnuplot(outdir, s)
    report = {
        "generated_at": when,
        "quick": quick,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "results": rows,
        "ratios": ratios,
        "targets": targets,
        "peak_rss_kb": peak,
        "chart": "report.png" if png else None,
        "chart_note": png_note,
    }
    with open(os.path.join(outdir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    with open(os.path.join(outdir, "report.md"), "w", encoding="utf-8") as f:
        f.write(markdown(s, ratios, targets, peak, quick, png, png_note, bad, when))
    for t in targets:
        print(f"bench: {t['verdict']:12} {t['target']}: "
              f"{fmt(t['measured'], 2)} (wanted {t['cmp']} {t['limit']:g})",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
