#!/usr/bin/env python3
"""Plots a `torus-bench devnet` JSON as an SVG (standard library only).

    python3 benches/scripts/plot_devnet.py benches/results/devnet-5-1000000.json OUT.svg

Three panels against keys stored: the fill rate (keys/s over windows of at least
10 s of `progress`), the largest node's resident memory (VmRSS, which counts the
LMDB pages the kernel has mapped, and RssAnon, the node's own memory) and node 1's
LMDB file, both from `resources`.
"""

import json
import sys

W, PANEL_H, M_LEFT, M_RIGHT, M_TOP, GAP = 760, 190, 70, 20, 30, 50


def rate_points(progress, window=10.0):
    out, i = [], 0
    for j in range(1, len(progress)):
        t0, k0 = progress[i]
        t1, k1 = progress[j]
        if t1 - t0 >= window:
            out.append(((k0 + k1) / 2, (k1 - k0) / (t1 - t0)))
            i = j
    return out


def nice_max(v):
    if v <= 0:
        return 1.0
    mag = 10 ** (len(str(int(v))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * mag >= v:
            return step * mag
    return 10 * mag


def panel(svg, top, title, xmax, series, unit):
    ymax = nice_max(max((y for _, pts, _ in series for _, y in pts), default=1) * 1.1)
    x0, x1 = M_LEFT, W - M_RIGHT
    y0, y1 = top + PANEL_H, top

    def sx(x):
        return x0 + (x1 - x0) * x / xmax

    def sy(y):
        return y0 - (y0 - y1) * y / ymax

    svg.append(f'<text x="{x0}" y="{top - 8}" font-size="13" font-weight="bold">{title}</text>')
    svg.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#999"/>')
    for f in (0, 0.25, 0.5, 0.75, 1):
        y = sy(ymax * f)
        svg.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#eee"/>')
        svg.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{ymax * f:g}</text>')
        x = sx(xmax * f)
        svg.append(f'<text x="{x:.1f}" y="{y0 + 15}" font-size="11" text-anchor="middle">{int(xmax * f):,}</text>')
    svg.append(f'<text x="{x0 - 55}" y="{(y0 + y1) / 2:.0f}" font-size="11" transform="rotate(-90 {x0 - 55} {(y0 + y1) / 2:.0f})" text-anchor="middle">{unit}</text>')
    for n, (label, pts, colour) in enumerate(series):
        if pts:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        svg.append(f'<text x="{x1 - 250}" y="{y1 + 16 + 14 * n}" font-size="11" fill="{colour}">{label}</text>')


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    d = json.load(open(sys.argv[1]))
    progress = d["progress"]
    res = [r for r in d.get("resources", []) if r[1] is not None]
    xmax = float(d["keys"])
    h = M_TOP + 3 * PANEL_H + 3 * GAP
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" font-family="sans-serif">',
           f'<rect width="{W}" height="{h}" fill="white"/>',
           f'<text x="{M_LEFT}" y="18" font-size="14">torus-bench devnet: {d["nodes"]} nodes, k = {d["k"]}, {d["keys"]:,} keys, {d["wall_s"]:.0f} s, {d["cores"]} cores (x: keys stored)</text>']
    top = M_TOP + 20
    panel(svg, top, "Fill rate", xmax, [("keys/s (10 s windows)", rate_points(progress), "#1f77b4")], "keys/s")
    top += PANEL_H + GAP
    panel(svg, top, "Resident memory, largest node", xmax, [
        ("VmRSS (with LMDB's mapped pages)", [(r[1], r[2]) for r in res if r[2] is not None], "#d62728"),
        ("RssAnon (the node's own memory)", [(r[1], r[3]) for r in res if r[3] is not None], "#2ca02c"),
    ], "MiB")
    top += PANEL_H + GAP
    panel(svg, top, "Node 1's LMDB file", xmax, [
        ("data.mdb", [(r[1], r[4] / 2**20) for r in res if r[4] is not None], "#9467bd"),
    ], "MiB")
    svg.append("</svg>")
    open(sys.argv[2], "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
