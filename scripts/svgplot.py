"""A small line-chart writer: SVG text from a few series of (x, y) points, with axes,
ticks, an optional log scale on either axis, a legend and a title. No dependencies.

>>> svg = line_chart("t", [("ours", [(1, 10), (10, 20)])], "sessions", "ops/s", log_x=True)
>>> svg.startswith("<svg") and "ours" in svg
True
"""

import math
from xml.sax.saxutils import escape

PALETTE = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
WIDTH, HEIGHT = 720, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 180, 40, 50


def si(v):
    """A tick label: 1k, 2.5M, 0.1, 1G...

    >>> [si(0), si(1000), si(2500000), si(0.5), si(1024), si(12)]
    ['0', '1k', '2.5M', '0.5', '1.02k', '12']
    """
    if v == 0:
        return "0"
    for div, suffix in [(1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")]:
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def linear_ticks(lo, hi, count=5):
    """Round ticks (steps of 1, 2 or 5 times a power of ten) covering [lo, hi].

    >>> linear_ticks(0, 87)
    [0, 20, 40, 60, 80, 100]
    >>> linear_ticks(1, 7)
    [0, 2, 4, 6, 8]
    """
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t < hi + step:
        ticks.append(round(t, 10) if step < 1 else int(round(t)))
        if t >= hi:
            break
        t += step
    return ticks


def log_ticks(lo, hi):
    """Ticks covering [lo, hi] (lo > 0) for a log axis: powers of ten, or 1, 2 and 5
    times them when the range spans at most two decades.

    >>> log_ticks(3, 2000)
    [1, 10, 100, 1000, 10000]
    >>> log_ticks(900, 22000)
    [500, 1000, 2000, 5000, 10000, 20000, 50000]
    """
    a = math.floor(math.log10(lo))
    b = math.ceil(math.log10(hi))
    if b == a:
        b += 1
    steps = (1,) if math.log10(hi / lo) > 2 else (1, 2, 5)
    ticks = [m * 10.0 ** e for e in range(a, b + 1) for m in steps]
    ticks = [int(t) if t >= 1 else t for t in ticks]
    first = max(t for t in ticks if t <= lo)
    last = min(t for t in ticks if t >= hi)
    return [t for t in ticks if first <= t <= last]


class Axis:
    """Maps data values on one axis to pixels between `p0` and `p1`."""

    def __init__(self, values, log, p0, p1, from_zero):
        values = [v for v in values if v is not None and (v > 0 or not log)]
        if not values:
            values = [1]
        lo, hi = min(values), max(values)
        if from_zero and not log:
            lo = min(lo, 0)
        self.log = log
        self.ticks = log_ticks(lo, hi) if log else linear_ticks(lo, hi)
        self.lo, self.hi = self.ticks[0], self.ticks[-1]
        self.p0, self.p1 = p0, p1

    def __call__(self, v):
        f = math.log10 if self.log else (lambda x: x)
        frac = (f(v) - f(self.lo)) / ((f(self.hi) - f(self.lo)) or 1)
        return self.p0 + frac * (self.p1 - self.p0)


def _style(i, extra):
    color = extra.get("color", PALETTE[i % len(PALETTE)])
    dash = f' stroke-dasharray="{extra["dash"]}"' if extra.get("dash") else ""
    return color, dash


def line_chart(title, series, x_label, y_label, log_x=False, log_y=False, x_ticks=None):
    """An SVG line chart. `series`: (name, points) or (name, points, {"color", "dash"});
    points are (x, y) pairs, and a y of None leaves a gap in the line. `x_ticks`
    replaces the x axis's ticks (e.g. exactly the measured x values)."""
    xs = [x for _, pts, *_ in series for x, _ in pts]
    ys = [y for _, pts, *_ in series for _, y in pts]
    right = WIDTH - RIGHT
    bottom = HEIGHT - BOTTOM
    xa = Axis(xs, log_x, LEFT + 12, right - 12, from_zero=False)
    if x_ticks:
        xa.ticks = list(x_ticks)
        xa.lo, xa.hi = min(xa.ticks + [min(xs)]), max(xa.ticks + [max(xs)])
    ya = Axis(ys, log_y, bottom, TOP, from_zero=True)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{(LEFT + right) / 2}" y="22" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    for t in ya.ticks:
        y = ya(t)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{si(t)}</text>')
    for t in xa.ticks:
        x = xa(t)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{si(t)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{bottom - TOP}" '
               'fill="none" stroke="#333"/>')
    scale = lambda log: " (log scale)" if log else ""  # noqa: E731
    out.append(f'<text x="{(LEFT + right) / 2}" y="{HEIGHT - 12}" text-anchor="middle">'
               f'{escape(x_label)}{scale(log_x)}</text>')
    out.append(f'<text transform="translate(16 {(TOP + bottom) / 2}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_label)}{scale(log_y)}</text>')
    for i, (name, pts, *rest) in enumerate(series):
        color, dash = _style(i, rest[0] if rest else {})
        runs, run = [], []
        for x, y in sorted(pts):
            if y is None or (log_y and y <= 0):
                runs, run = runs + [run], []
            else:
                run.append((xa(x), ya(y)))
        for r in runs + [run]:
            if len(r) > 1:
                coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in r)
                out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" '
                           f'stroke-width="2"{dash}/>')
            for x, y in r:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
        ly = TOP + 10 + i * 20
        out.append(f'<line x1="{right + 12}" y1="{ly}" x2="{right + 40}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{right + 46}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
