"""Server-rendered SVG charts: no JavaScript library, readable without JS and by screen readers
(every chart carries a title, a description and a data table beside it)."""
from __future__ import annotations

import itertools

from django.utils.html import escape
from django.utils.safestring import mark_safe

_ids = itertools.count()
COLOURS = {"separation": "#5b5bd6", "download": "#12a594", "export": "#e5484d"}


def stacked_bars(series: list[dict], kinds=("separation", "download", "export"), title: str = "",
                 width: int = 720, height: int = 220) -> str:
    """Stacked daily bars; `series` rows are {"day": date, kind: count, ...}."""
    pad_l, pad_b, pad_t = 36, 28, 10
    n = max(len(series), 1)
    totals = [sum(r[k] for k in kinds) for r in series]
    top = max(max(totals, default=0), 1)
    step = 1 if top <= 5 else max(1, round(top / 4))
    top = ((top + step - 1) // step) * step
    plot_w, plot_h = width - pad_l - 4, height - pad_b - pad_t
    bw = plot_w / n
    cid = f"chart{next(_ids)}"
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="{cid}t {cid}d"><title id="{cid}t">{escape(title)}</title>'
             f'<desc id="{cid}d">{escape(_describe(series, kinds))}</desc>']
    for v in range(0, top + 1, step):
        y = pad_t + plot_h - plot_h * v / top
        parts.append(f'<line x1="{pad_l}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{v}</text>')
    for i, row in enumerate(series):
        x = pad_l + i * bw
        y = pad_t + plot_h
        for k in kinds:
            if row[k]:
                h = plot_h * row[k] / top
                y -= h
                parts.append(f'<rect x="{x + bw * 0.15:.1f}" y="{y:.1f}" width="{bw * 0.7:.1f}" height="{h:.1f}" '
                             f'fill="{COLOURS.get(k, "#888")}"><title>{row["day"]:%d %b}: {row[k]} {k}(s)</title></rect>')
        if i % max(1, n // 6) == 0 and i < n - max(1, n // 12) or i == n - 1:
            anchor = "end" if i == n - 1 else "middle"
            tx = x + bw if i == n - 1 else x + bw / 2
            parts.append(f'<text x="{tx:.1f}" y="{height - 8}" text-anchor="{anchor}" class="tick">'
                         f'{row["day"]:%d %b}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _describe(series, kinds) -> str:
    totals = {k: sum(r[k] for r in series) for k in kinds}
    if not series:
        return "no data"
    span = f'{series[0]["day"]:%d %b %Y} to {series[-1]["day"]:%d %b %Y}'
    return f"Daily usage from {span}: " + ", ".join(f"{v} {k}(s)" for k, v in totals.items())
