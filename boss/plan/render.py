"""`boss render`: a plan's generated files from its manifest (SPEC sections 2 and 7).

run_workers.sh, plan.md and one CONTEXT.md per worker. A generated file a person edited since
it was rendered is kept (unless forced): `.rendered.json` records the sha256 of each file as
written, so a file whose content differs from its record was edited by hand.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boss.core import yamlio
from boss.core.config import Config, config_path
from boss.core.manifest import Manifest, overlap_warning, scope_overlaps, scope_warnings
from boss.core.paths import PlanPaths
from boss.core.sandbox import plan_line
from boss.core.templates import make_env
from boss.plan import definitions
from boss.plan.checks import plan_file_warnings

INDEX_VERSION = 1


@dataclass
class RenderResult:
    """What a render did, file by file (paths absolute)."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # edited by a person; left as they are
    warnings: list[str] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)  # workers whose definition changed since they ran
    removed: list[str] = field(default_factory=list)  # workers no longer in the manifest


def generate(
    paths: PlanPaths, m: Manifest, config: Config, tracked: Iterable[str] = ()
) -> tuple[dict[Path, tuple[str, int]], list[str]]:
    """Every generated file's text and mode, and the plan's warnings; writes nothing."""
    env = make_env()
    overlaps = scope_overlaps(m, tracked)
    warnings = [*scope_warnings(m), *plan_file_warnings(paths.repo, m)]
    warnings += [overlap_warning(*o) for o in overlaps]
    script_rel = paths.run_script.relative_to(paths.repo).as_posix()
    files: dict[Path, tuple[str, int]] = {}
    order = m.order()
    files[paths.run_script] = (
        env.get_template("run_workers.sh.j2").render(
            m=m, order=order, jobs=config.jobs, python=sys.executable, script_rel=script_rel
        ),
        0o755,
    )
    position = {w.id: i for i, w in enumerate(m.workers)}
    files[paths.plan_md] = (
        env.get_template("plan.md.j2").render(
            m=m,
            waves=m.waves(),
            settings={w.id: m.settings(w) for w in m.workers},
            position=position,
            warnings=warnings,
            script_rel=script_rel,
            sandbox=plan_line(config.sandbox),
        ),
        0o644,
    )
    context = env.get_template("context.md.j2")
    by_id = {w.id: w for w in m.workers}
    for w in m.workers:
        text = context.render(
            m=m, w=w, s=m.settings(w), deps=[by_id[d] for d in w.depends_on], script_rel=script_rel
        )
        files[paths.context(w.id)] = (text, 0o644)
    return files, warnings


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_index(paths: PlanPaths) -> tuple[dict[str, str], Any, dict[str, Any]]:
    """The rendered files' hashes, and the workers' definitions (of the workers rendered, and
    of those removed earlier), as the last render left them."""
    try:
        raw = json.loads(paths.rendered_index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, None, {}
    if not isinstance(raw, dict):
        return {}, None, {}
    files = raw.get("files")
    hashes = {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    gone = raw.get("removed")
    return hashes, raw.get("workers"), gone if isinstance(gone, dict) else {}


def render_plan(
    paths: PlanPaths,
    m: Manifest,
    config: Config,
    *,
    force: bool = False,
    tracked: Iterable[str] = (),
) -> RenderResult:
    """Write the plan's generated files; keep (and report) the ones a person edited.

    Args:
        paths: where the plan lives.
        m: the validated manifest.
        config: the project's config (jobs for run_workers.sh).
        force: overwrite files a person edited.
        tracked: the repository's tracked paths, for the scope-overlap warnings.
    """
    from boss.core.worktrees import foreign_branches

    files, warnings = generate(paths, m, config, tracked)
    warnings += [message for _, message in foreign_branches(paths, m.workers)]
    index, ran_with, removed_before = _read_index(paths)
    gone = definitions.removed_ids(m, ran_with, index)
    why = "it was removed from the manifest"
    definitions.refuse_running(
        paths, config, dict.fromkeys(gone, why), "before removing it, then render again"
    )
    # A worker added back is judged against the definition it last ran with.
    previous = {**removed_before, **ran_with} if isinstance(ran_with, dict) else ran_with
    stale = definitions.changed(previous, m)
    definitions.refuse_running(paths, config, stale)
    result = RenderResult(warnings=warnings, reset=definitions.reset(paths, stale))
    result.removed = definitions.drop_removed(paths, gone, index, force)
    ids = {w.id for w in m.workers}
    kept_removed = {k: v for k, v in removed_before.items() if k not in ids}
    if isinstance(ran_with, dict):
        kept_removed.update({k: ran_with[k] for k in gone if k in ran_with})
    for path, (text, mode) in files.items():
        rel = paths.rel(path)
        data = text.encode("utf-8")
        try:
            current: bytes | None = path.read_bytes()
        except FileNotFoundError:
            current = None
        if current == data:
            result.unchanged.append(path)
        elif current is None or force or index.get(rel) == _sha(current):
            yamlio.write_atomic(path, text, mode)
            result.written.append(path)
        else:
            result.kept.append(path)
            continue
        index[rel] = _sha(data)
    payload: dict[str, Any] = {
        "version": INDEX_VERSION,
        "files": dict(sorted(index.items())),
        "workers": definitions.digests(m),
        "removed": dict(sorted(kept_removed.items())),
    }
    yamlio.write_atomic(paths.rendered_index, json.dumps(payload, indent=1) + "\n")
    # What every worker reads at start, kept parsed: workers then need no YAML parser.
    for source in (paths.manifest, config_path(paths.repo)):
        if source.is_file():
            yamlio.save_cache(source)
    return result
