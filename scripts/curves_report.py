"""The write-up of scripts/curves.py's runs: medians per point, one SVG chart per
dimension, workload and metric (scripts/svgplot.py), the raw runs as CSV and JSON, and
the markdown section that shows them, between the curves markers of BENCHMARKS.md."""

import csv
import json
import os

import benchlib
import svgplot
from benchlib import fmt, median

KINDS = ["apache", "ours"]
NAMES = {"apache": "Apache", "ours": "ours"}
COLORS = {"apache": "#1f77b4", "ours": "#d62728"}
# dimension: (title, x axis, log x)
TITLES = {
    "sessions": ("Sessions", "sessions", True),
    "inflight": ("Requests in flight per session (8 sessions)", "in flight per session", True),
    "values": ("Value size", "bytes per value", True),
    "tree": ("Tree size (random znodes of a populated tree)", "znodes", True),
    "ensemble": ("Ensemble size (sessions spread over the members)", "voting members", False),
    "observers": ("Observers beside 3 voters (sessions spread)", "observers", False),
    "watches": ("Watches held by 20 other sessions", "watches registered", True),
    "held": ("Sessions held open", "sessions held", True),
}

def medians(points):
    """{(dim, workload, series, server): {x: median row}} over rounds, failures skipped."""
    groups = {}
    for p in points:
        if "error" in p:
            continue
        groups.setdefault((p["dim"], p["workload"], p["series"], p["server"]), {}).setdefault(p["x"], []).append(p)
    out = {}
    for key, by_x in groups.items():
        out[key] = {x: {f: median([r.get(f) for r in rs]) for f in rs[0] if f not in ("dim", "workload", "series", "server", "x", "round")}
                    for x, rs in by_x.items()}
    return out


def crossing(xs, ours, apache):
    """Who is ahead where, in words.

    >>> crossing([1, 4, 16, 64], [5, 9, 30, 40], [8, 10, 20, None])
    'Apache ahead at 1–4; ours ahead at 16'
    >>> crossing([1, 10], [2, 3], [1, 1])
    'ours ahead at every point'
    """
    lead = [(x, "ours" if o > a else "Apache") for x, o, a in zip(xs, ours, apache) if o is not None and a is not None]
    if not lead:
        return "no comparable points"
    if all(w == lead[0][1] for _, w in lead):
        return f"{lead[0][1]} ahead at every point"
    parts, start = [], 0
    for i in range(1, len(lead) + 1):
        if i == len(lead) or lead[i][1] != lead[start][1]:
            a, b = lead[start][0], lead[i - 1][0]
            parts.append(f"{lead[start][1]} ahead at {svgplot.si(a)}" + (f"–{svgplot.si(b)}" if b != a else ""))
            start = i
    return "; ".join(parts)


def charts(med, charts_dir, rel, connecting):
    """Writes the SVGs; the markdown that shows them, one list of lines per dimension."""
    os.makedirs(charts_dir, exist_ok=True)
    md = {}
    for dim, (title, x_label, log_x) in TITLES.items():
        workloads = sorted({k[1] for k in med if k[0] == dim}, key=lambda w: w != "set")
        for wl in workloads:
            labels = sorted({k[2] for k in med if k[0] == dim and k[1] == wl})
            metrics = [("ops_per_sec", "ops/s", ""), ("p99_us", "p99 latency, µs", "-p99")]
            if dim == "held":
                metrics = [("connect_s", f"seconds to connect them all ({connecting} at a time)", "-connect"),
                           ("memory_mib", "server memory grown, MiB", "-memory"),
                           ("ops_per_sec", "get ops/s meanwhile", "")]
            images, verdicts = [], []
            for field, y_label, suffix in metrics:
                series, xs_all = [], set()
                for li, label in enumerate(labels):
                    for kind in KINDS:
                        rows = med.get((dim, wl, label, kind), {})
                        pts = [(x, rows[x].get(field)) for x in sorted(rows)]
                        xs_all |= set(rows)
                        style = {"color": COLORS[kind], "dash": "6 4" if li else ""}
                        series.append((NAMES[kind] + (f", {label}" if label else ""), pts, style))
                ys = [y for _, pts, _ in series for _, y in pts if y]
                log_y = bool(ys) and min(ys) > 0 and max(ys) / min(ys) > 20
                name = f"{dim}-{wl}{suffix}.svg" if dim != "held" else f"held{suffix or '-get'}.svg"
                svg = svgplot.line_chart(f"{title}: {wl}" if dim != "held" else title, series,
                                         x_label, y_label, log_x=log_x, log_y=log_y,
                                         x_ticks=sorted(xs_all))
                with open(os.path.join(charts_dir, name), "w") as f:
                    f.write(svg)
                images.append(f"![{title}: {wl}, {y_label}]({rel}/{name})")
            for label in labels:
                rows = {k: med.get((dim, wl, label, k), {}) for k in KINDS}
                xs = sorted(set(rows["ours"]) | set(rows["apache"]))
                get = lambda kind, x: rows[kind].get(x, {}).get("ops_per_sec")  # noqa: E731
                verdict = crossing(xs, [get("ours", x) for x in xs], [get("apache", x) for x in xs])
                verdicts.append(f"- {wl}{', ' + label if label else ''}, ops/s: {verdict}.")
            md.setdefault(dim, []).extend([" ".join(images), "\n".join(verdicts)])
    return md


def table(med):
    head = ("| dimension | workload | x | Apache ops/s | ours ops/s | ratio | Apache p99 µs | ours p99 µs "
            "| Apache CPU µs/op | ours CPU µs/op | other (Apache / ours) |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    keys = sorted({(k[0], k[1], k[2]) for k in med}, key=lambda k: (list(TITLES).index(k[0]), k[1], k[2]))
    for dim, wl, label in keys:
        a, o = med.get((dim, wl, label, "apache"), {}), med.get((dim, wl, label, "ours"), {})
        for x in sorted(set(a) | set(o)):
            ar, orow = a.get(x, {}), o.get(x, {})
            ratio = (orow.get("ops_per_sec") / ar["ops_per_sec"]
                     if ar.get("ops_per_sec") and orow.get("ops_per_sec") else None)
            other = []
            for f, unit, d in [("connect_s", "s to connect", 2), ("bytes_per_session", "B/session", 0),
                               ("watch_set_s", "s to set the watches", 1)]:
                if f in ar or f in orow:
                    other.append(f"{fmt(ar.get(f), d)} / {fmt(orow.get(f), d)} {unit}")
            lines.append(
                f"| {dim} | {wl}{', ' + label if label else ''} | {svgplot.si(x)} | {fmt(ar.get('ops_per_sec'))} | "
                f"{fmt(orow.get('ops_per_sec'))} | {fmt(ratio, 2)}× | {fmt(ar.get('p99_us'))} | {fmt(orow.get('p99_us'))} | "
                f"{fmt(ar.get('cpu_us_per_op'), 1)} | {fmt(orow.get('cpu_us_per_op'), 1)} | {'; '.join(other)} |")
    return "\n".join(lines)


def write(points, failures, out, charts_dir, intro, notes, connecting, command):
    """Charts and data into `charts_dir`; `intro`, then per dimension its note, charts and
    who leads where, the failures and a table of medians into `out`'s curves block."""
    med = medians(points)
    rel = os.path.relpath(os.path.abspath(charts_dir), os.path.dirname(os.path.abspath(out)))
    md = charts(med, charts_dir, rel, connecting)
    with open(os.path.join(charts_dir, "curves.json"), "w") as f:
        json.dump({"command": command, "points": points, "failures": failures}, f, indent=1)
    fields = ["dim", "workload", "series", "x", "server", "round", "ops_per_sec", "p50_us", "p99_us",
              "cpu_us_per_op", "errors", "connect_s", "connect_p99_us", "memory_mib", "rss_mib",
              "bytes_per_session", "watch_set_s", "error"]
    with open(os.path.join(charts_dir, "curves.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(points)
    parts = ["<!-- curves:begin -->",
             f"{intro} Raw runs: [curves.csv]({rel}/curves.csv), [curves.json]({rel}/curves.json)."]
    for dim, (title, _, _) in TITLES.items():
        if dim in md:
            parts.append(f"\n### {title}\n\n{notes[dim]}\n\n" + "\n\n".join(md[dim]))
    if failures:
        parts.append("\nRuns that failed (no point drawn):\n\n" + "\n".join(f"- {f}" for f in failures))
    parts.append("\n<details><summary>The numbers (medians)</summary>\n\n" + table(med) + "\n\n</details>")
    parts.append("<!-- curves:end -->")
    benchlib.replace_block(out, "curves", "\n".join(parts), heading="## How cost grows")
    print(f"wrote {out} and {charts_dir}/ ({len(points)} runs, {len(failures)} failed)")
