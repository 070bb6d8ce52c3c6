#!/usr/bin/env python3
"""The report of one `scripts/bench.sh all` run.

    bench_report.py [--quick] LINES.jsonl OUTDIR

LINES.jsonl holds every JSON line the run printed (one object per line).
Writes OUTDIR/report.json (the lines, the ratios and the targets),
OUTDIR/report.md (the figures, each target with PASS or MISS, the ratios)
and OUTDIR/report.png (gnuplot: throughput per scenario, the e2e latency
curve and query latency percentiles; skipped, and said so, without
gnuplot).

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
    by = lambda name: pick(rows, lambda r: r.get("scenario") == name)
    s["e2e"] = by("e2e-calls")
    s["hot"] = by("hot-org")
    s["curve"] = sorted((r for r in rows if r.get("scenario") == "e2e-latency"),
                        key=lambda r: num(r, "offered_events_per_s") or 0)
    s["latency"] = pick(s["curve"], lambda r: num(r, "offered_events_per_s") == 5000)
    s["limit"] = by("limit")
    s["limit_pub"] = by("limit-publish")
    s["limit_cons"] = by("limit-consume")
    s["baseline"] = by("baseline-seed")
    s["pre1m"] = by("e2e-preload-1000000")
    s["pre10m"] = by("e2e-preload-10000000")
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


def eps(row):
    return num(row, "events_per_s") if ok(row) else None


def build(rows, quick):
    s = classify(rows)
    e2e_eps, hot_eps = eps(s["e2e"]), eps(s["hot"])
    lim_eps = eps(s["limit"])
    e2e_cps = num(s["e2e"], "call_ended_per_s") if ok(s["e2e"]) else None
    base_cps = num(s["baseline"], "calls_per_s") if ok(s["baseline"]) else None
    ratios = {
        # both sides count events: call.started + call.ended, committed
        "e2e_calls_over_limit": ratio(e2e_eps, lim_eps),
        # per call: calls fully processed by both actors vs calls fully
        # processed (both events, one transaction each) by the old design
        "e2e_calls_over_baseline_seed": ratio(e2e_cps, base_cps),
        "hot_org_over_e2e_calls": ratio(hot_eps, e2e_eps),
        "preload_10m_over_e2e_calls": ratio(eps(s["pre10m"]), e2e_eps),
        "preload_1m_over_e2e_calls": ratio(eps(s["pre1m"]), e2e_eps),
        "limit_publish_over_limit": ratio(eps(s["limit_pub"]), lim_eps),
        "limit_consume_over_limit": ratio(eps(s["limit_cons"]), lim_eps),
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
        elif cmp == "<=":
            verdict = "PASS" if measured <= limit else "MISS"
        else:
            verdict = "PASS" if measured < limit else "MISS"
        return {"target": name, "measured": measured, "unit": unit,
                "cmp": cmp, "limit": limit, "verdict": verdict, "note": note}

    targets = [
        target("e2e-calls / limit", ratios["e2e_calls_over_limit"], "x", ">=",
               0.7, f"e2e {fmt(e2e_eps)} events/s vs vox's loop with a trivial"
               f" handler {fmt(lim_eps)} events/s"),
        target("e2e-calls / baseline-seed, per call",
               ratios["e2e_calls_over_baseline_seed"], "x", ">=", 5,
               f"e2e {fmt(e2e_cps)} calls/s vs the replaced design through"
               f" JetStream {fmt(base_cps)} calls/s"),
        target("p99 publish-to-commit at 5,000 events/s offered",
               num(lat, "p99_ms"), "ms", "<=", 50,
               f"p50 {fmt(num(lat, 'p50_ms'), 2)} ms, "
               f"{fmt(num(lat, 'samples'), 0)} samples" if lat else ""),
        target("hot-org / e2e-calls", ratios["hot_org_over_e2e_calls"], "x",
               ">=", 0.9, "events/s vs events/s"),
        target("e2e with 10M calls preloaded / e2e on empty tables",
               ratios["preload_10m_over_e2e_calls"], "x", ">=", 0.8,
               "events/s vs events/s" if s["pre10m"] else
               "not run: BENCH_ARGS=--preload make bench"),
        target("query.wallet p99 / echo p99 at 2,000/s",
               ratios["query_p99_over_echo_p99"], "x", "<=", 2,
               f"query p99 {fmt(q_p99_ms, 3)} ms, echo p99 {fmt(echo_p99_ms, 3)} ms"),
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
    for label, key in (("e2e-calls", "e2e"), ("hot-org", "hot"),
                       ("e2e 1M preloaded", "pre1m"), ("e2e 10M preloaded", "pre10m"),
                       ("limit", "limit"), ("limit publish-only", "limit_pub"),
                       ("limit consume-only", "limit_cons"),
                       ("baseline-seed", "baseline")):
        v = eps(s[key])
        if v is not None:
            bars.append((label, v))
    curve = [(num(r, "offered_events_per_s"), num(r, "p50_ms"), num(r, "p99_ms"),
              num(r, "events_per_s")) for r in s["curve"] if ok(r)]
    lats = []
    for label, key in (("echo 2000/s", "echo"), ("wallet 2000/s", "q_fixed"),
                       ("wallet saturation", "q_sat")):
        row = s[key] if ok(s[key]) else None
        vals = [num(row, k) for k in ("p50_us", "p99_us", "p999_us")]
        lats.append((label, [v / 1000 if v is not None else 0 for v in vals]))
    thr = os.path.join(outdir, "throughput.dat")
    cur = os.path.join(outdir, "curve.dat")
    lat = os.path.join(outdir, "latency.dat")
    with open(thr, "w", encoding="utf-8") as f:
        for label, v in bars or [("none", 0)]:
            f.write(f'"{label}" {v:.1f}\n')
    with open(cur, "w", encoding="utf-8") as f:
        for x, p50, p99, got in curve or [(0, 0, 0, 0)]:
            f.write(f"{x or 0:.0f} {p50 or 0:.3f} {p99 or 0:.3f} {got or 0:.1f}\n")
    with open(lat, "w", encoding="utf-8") as f:
        for label, vals in lats:
            f.write(f'"{label}" {vals[0]:.4f} {vals[1]:.4f} {vals[2]:.4f}\n')
    png = os.path.join(outdir, "report.png")
    script = f"""
set terminal png size 1600,500 noenhanced
set output '{png}'
set multiplot layout 1,3 title 'vox-bench (one run; absolute figures drift, ratios less)'
set grid ytics
set yrange [0:*]
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set xtics rotate by -25
set title 'throughput (events/s, to the last commit)'
unset key
plot '{thr}' using 2:xtic(1) lc rgb '#3b6ea8'
set style data linespoints
set xtics norotate
set xrange [0:*]
set xlabel 'events/s offered'
set ylabel 'ms'
set title 'e2e publish-to-commit latency'
set key top left
plot '{cur}' using 1:2 title 'p50' lw 2 lc rgb '#6aa84f', \\
     '' using 1:3 title 'p99' lw 2 lc rgb '#e69138'
unset xlabel
unset ylabel
set autoscale x
set style data histograms
set style histogram clustered gap 1
set title 'query latency (ms)'
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
        for p in (thr, cur, lat):
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
             "same machine as the load; every pipeline scenario on a fresh "
             "database and empty streams. Absolute figures drift on shared "
             "machines: the ratios are the headline.")
    if quick:
        L.append("")
        L.append("**Quick run** (4,000 calls per pipeline scenario, 3 s query "
                 "and latency runs): a check that the suite works, not the "
                 "standard figures.")
    L.append("")
    L.append("## Targets")
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
        rows.append((t["target"], lim, m, f"**{t['verdict']}**", t["note"]))
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
    L.append(table(("ratio", "value"), [
        (k.replace("_", " "), fmt(v, 2)) for k, v in ratios.items()]))
    L.append("")
    L.append("## Pipeline")
    L.append("")
    prow = []
    for label, key in (("e2e-calls (1,000 orgs)", "e2e"), ("hot-org (1 org)", "hot"),
                       ("e2e-calls, 1M calls preloaded", "pre1m"),
                       ("e2e-calls, 10M calls preloaded", "pre10m"),
                       ("limit: vox's loop, trivial handler, concurrent", "limit"),
                       ("limit: publisher alone", "limit_pub"),
                       ("limit: loop alone, on a pre-published stream", "limit_cons"),
                       ("baseline-seed (8 workers, one event per transaction)",
                        "baseline")):
        r = s[key]
        if r is None:
            prow.append((label, "not run", "", "", ""))
            continue
        if "error" in r:
            prow.append((label, f"failed: {r['error']}", "", "", ""))
            continue
        per_call = num(r, "call_ended_per_s", "calls_per_s")
        prow.append((label, fmt(num(r, "events"), 0), fmt(num(r, "seconds"), 2),
                     fmt(num(r, "events_per_s")),
                     fmt(per_call) if per_call is not None else ""))
    L.append(table(("scenario", "events", "seconds", "events/s", "calls/s"), prow))
    L.append("")
    L.append("Events are call.started + call.ended (two per call). e2e counts "
             "them once both vox-calls and vox-billing committed them, checked "
             "with SQL, to the last commit. limit feeds the same calls to vox's "
             "own consume loop with a handler that writes one narrow row per "
             "event. baseline-seed takes them one at a time from JetStream, one "
             "transaction each, as the replaced system did.")
    L.append("")
    L.append("## Latency curve (e2e-calls, paced)")
    L.append("")
    crow = []
    for r in s["curve"]:
        if not ok(r):
            crow.append(("failed", "", "", "", ""))
            continue
        crow.append((fmt(num(r, "offered_events_per_s"), 0), fmt(eps(r)),
                     fmt(num(r, "p50_ms"), 2), fmt(num(r, "p99_ms"), 2),
                     fmt(num(r, "max_ms"), 2)))
    L.append(table(("offered events/s", "achieved events/s", "p50 ms", "p99 ms",
                    "max ms"), crow))
    L.append("")
    L.append("Latency: publish (its due time) to the commit-side time of a "
             "sample of call.ended.")
    L.append("")
    L.append("## query.wallet")
    L.append("")
    qrow = []
    for label, key in (("echo baseline, 2,000/s", "echo"),
                       ("query.wallet 2,000/s", "q_fixed"),
                       ("query.wallet saturation", "q_sat")):
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
    L.append("![throughput, latency curve, query latency](report.png)" if png
             else png_note)
    L.append("")
    L.append("Rerun: `make bench` (standard), `BENCH_ARGS=--quick make bench`, "
             "`BENCH_ARGS=--preload make bench` (adds the 1M and 10M preloads). "
             "Raw lines: report.json.")
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
