"""The plan's dependency graph as server-rendered SVG: one band per depth, a box per worker
coloured by its state, a line from each dependency to its dependent."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from boss.core.manifest import Manifest
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
