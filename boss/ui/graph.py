"""The plan's dependency graph as server-rendered SVG: one band per depth, a box per worker
coloured by its state, a line from each dependency to its dependent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from boss.core.manifest import Manifest
from boss.core.status import parse_iso
from boss.core.statusview import Row

BOX_W, BOX_H, GAP_X, GAP_Y, PER_LINE = 150, 34, 16, 30, 8
FILL = {
    "SUCCESS": "#d4f4dd", "FAILED": "#f9d0d0", "CRASHED": "#f9d0d0", "CORRUPT": "#f9d0d0",
    "SCOPE_VIOLATION": "#f3d4f5", "SKIPPED": "#f8efc8", "RUNNING": "#cfeefa", "WAITING": "#dfe3fb",
    "PENDING": "#f1f1f1",
}  # fmt: skip
STROKE = {"MERGED": "#1a7f37", "REVERTED": "#cf222e", "CONFLICT": "#cf222e", "QUARANTINED": "#8250df"}


def svg(m: Manifest, all_rows: Sequence[Row], layers: list[list[str]]) -> Markup:
    """The graph; every text from the plan or a status is escaped."""
    by_id = {r.id: r for r in all_rows}
    where: dict[str, tuple[int, int]] = {}
    y = 8
    for layer in layers:
        for n, wid in enumerate(layer):
            if n and n % PER_LINE == 0:
                y += BOX_H + GAP_Y // 2
            where[wid] = (8 + (n % PER_LINE) * (BOX_W + GAP_X), y)
        y += BOX_H + GAP_Y
    width = 8 + min(PER_LINE, max((len(la) for la in layers), default=1)) * (BOX_W + GAP_X)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{y}" '
        f'viewBox="0 0 {width} {y}" role="img" aria-label="dependency graph">'
    ]
    for w in m.workers:
        x2, y2 = where[w.id]
        for d in w.depends_on:
            if d in where:
                x1, y1 = where[d]
                parts.append(
                    f'<line x1="{x1 + BOX_W // 2}" y1="{y1 + BOX_H}" x2="{x2 + BOX_W // 2}" y2="{y2}" '
                    'stroke="#888" stroke-width="1.2"/>'
                )
    for w in m.workers:
        x, yy = where[w.id]
        r = by_id.get(w.id)
        state = r.state if r else "PENDING"
        verdict = r.verdict if r else ""
        label = f"{state} {r.outcome}" if r and r.outcome != "-" else state
        label = label if len(label) <= 24 else label[:23] + "…"
        parts.append(
            f'<a href="/w/{escape(w.id)}">'
            f'<g class="node" data-worker="{escape(w.id)}" data-state="{escape(state)}">'
            f"<title>{escape(w.id)}: {escape(w.title)}</title>"
            f'<rect x="{x}" y="{yy}" width="{BOX_W}" height="{BOX_H}" rx="5" '
            f'fill="{FILL.get(state, "#eee")}" '
            f'stroke="{STROKE.get(verdict, "#999")}" stroke-width="{2 if verdict else 1}"/>'
            f'<text x="{x + 6}" y="{yy + 14}" font-size="12" font-weight="bold">{escape(w.id[:20])}</text>'
            f'<text x="{x + 6}" y="{yy + 28}" font-size="10">{escape(label)}</text></g></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built above from escaped parts only


TL_W, TL_ROW = 900, 22
TL_FILL = {"pass": "#8fd19e", "fail": "#f19999", "rate-limit": "#f3d98b"}


def timeline(iterations: Sequence[Any], now: datetime | None = None) -> Markup:
    """A worker's iterations on one time axis: a bar per iteration from its first state-log
    line to its last, coloured by its test's outcome (a running one reaches now)."""
    spans = []
    for it in iterations:
        start, end = parse_iso(it.start), parse_iso(it.end)
        if start is not None and end is not None:
            spans.append((it, start, end))
    if not spans:
        return Markup("")
    t0 = min(s for _, s, _ in spans)
    t1 = max([e for _, _, e in spans] + ([now] if now else []))
    total = max(1.0, (t1 - t0).total_seconds())
    height = TL_ROW * len(spans) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline-svg" width="{TL_W + 200}" '
        f'height="{height}" role="img" aria-label="iterations on a timeline">'
    ]
    for n, (it, start, end) in enumerate(spans):
        last = now if (now and n == len(spans) - 1 and it.outcome not in ("pass", "fail")) else end
        x = 150 + (start - t0).total_seconds() / total * TL_W
        w = max(4.0, ((last or end) - start).total_seconds() / total * TL_W)
        y = n * TL_ROW + 2
        fill = TL_FILL.get(it.outcome, "#9ecbf0")
        parts.append(
            f'<g class="iteration" data-iteration="{escape(it.id)}">'
            f"<title>{escape(it.id)}: {escape(it.outcome)} "
            f"({escape(it.start)} to {escape(it.end)})</title>"
            f'<text x="0" y="{y + 14}" font-size="12">{escape(it.id[-12:])}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{TL_ROW - 6}" rx="3" fill="{fill}"/>'
            f'<text x="{x + w + 4:.1f}" y="{y + 14}" font-size="11">{escape(it.outcome)}</text></g>'
        )
    axis = height - 6
    parts.append(
        f'<text x="150" y="{axis}" font-size="10" fill="#666">{escape(iterations[0].start[11:19])}</text>'
    )
    parts.append(
        f'<text x="{150 + TL_W}" y="{axis}" font-size="10" fill="#666" text-anchor="end">'
        f"+{int(total)}s</text></svg>"
    )
    return Markup("".join(parts))  # noqa: S704 - built above from escaped parts only
