"""The ceremony's reports: `report.json` (one entry per worker, with its evidence) and
`REPORT.md` (the same for people, with a Mermaid timeline of the workers and merges), kept
in the ceremony's numbered folder `merge/history/<number>/` with its logs; the latest is
also `merge/REPORT.md` and `merge/report.json`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boss.core import runlog
from boss.core.errors import BossError
from boss.core.journal import MERGED, VERDICTS, Journal, Record
from boss.core.journal import load as load_journal
from boss.core.manifest import Manifest
from boss.core.paths import PlanPaths
from boss.core.yamlio import write_atomic

if TYPE_CHECKING:
    import jinja2

VERSION = 1


def counts_line(j: Journal) -> str:
    """'3 MERGED, 1 CONFLICT' in the verdicts' documented order."""
    tally = {v: sum(1 for r in j.records if r.verdict == v) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in tally.items() if n) or "no workers"


def _repo_rel(paths: PlanPaths, plan_rel: str) -> str:
    """A plan-relative artifact path as a path relative to the repository (what a user types)."""
    return (paths.root / plan_rel).relative_to(paths.repo).as_posix() if plan_rel else ""


def entry(paths: PlanPaths, r: Record) -> dict[str, Any]:
    """One worker's entry in report.json: its verdict and the evidence for it."""
    return {
        "id": r.id,
        "verdict": r.verdict,
        "reason": r.reason,
        "branch": r.branch,
        "state": r.state,
        "head": r.head,
        "start": r.start,
        "merge_commit": r.merge_commit,
        "test_log": _repo_rel(paths, r.test_log),
        "retry_log": _repo_rel(paths, r.retry_log),
        "retried": r.retried,
        "acceptance_log": _repo_rel(paths, r.acceptance_log),
        "broke": r.broke,
        "new_failures": r.new_failures,
        "conflicts": r.conflicts,
        "conflict_with": r.conflict_with,
        "out_of_scope": r.out_of_scope,
        "decision": r.decision,
        "by_hand": r.by_hand,
        "by_hand_note": by_hand_note(r.by_hand),
        "group": r.group,
    }


def by_hand_note(n: int) -> str:
    """What the report says of a branch a person finished: 'finished by hand: 2 commits after boss's last'."""
    return f"finished by hand: {n} commit{'' if n == 1 else 's'} after boss's last" if n else ""


def report_data(paths: PlanPaths, j: Journal) -> dict[str, Any]:
    """report.json's content."""
    baseline = dict(j.baseline)
    if baseline.get("log"):
        baseline["log"] = _repo_rel(paths, str(baseline["log"]))
    return {
        "version": VERSION,
        "plan": j.plan,
        "sandbox": _sandbox_line(paths),
        "base": j.base,
        "base_start": j.base_start,
        "result": j.head,
        "landed": j.landed,
        "integration_branch": j.integration_branch,
        "message": j.message,
        "number": j.number,
        "history": _repo_rel(paths, paths.rel(paths.ceremony_dir(j.number))) if j.number else "",
        "started_at": j.started_at,
        "finished_at": j.finished_at,
        "test_runs": j.test_runs,
        "acceptance_runs": j.acceptance_runs,
        "slots": j.slots,
        "rounds": j.rounds,
        "speculative_runs": j.speculative_runs,
        "wasted_runs": j.wasted_runs,
        "verified": j.verified,
        "baseline": baseline,
        "counts": {v: n for v in VERDICTS if (n := sum(1 for r in j.records if r.verdict == v))},
        "workers": [entry(paths, r) for r in j.records],
    }


_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z?")


def _when(stamp: str) -> str:
    """A timestamp as the timeline's date format (milliseconds, no zone)."""
    t = stamp.rstrip("Z")
    return t if "." in t else t + ".000"


def _stamped(*stamps: str) -> bool:
    """True when every stamp is a timestamp: the workers' come from their status files, and
    nothing else may reach the report's Mermaid block (a newline there could end the fence)."""
    return all(_STAMP.fullmatch(s) for s in stamps)


def _label(text: str) -> str:
    return re.sub(r"[:;#]", " ", text)


def timeline(j: Journal) -> list[str]:
    """The Mermaid gantt lines: each worker's run, then each step of the ceremony."""
    lines = [
        "gantt",
        f"    title Plan {_label(j.plan)}: workers and the merge ceremony",
        "    dateFormat YYYY-MM-DDTHH:mm:ss.SSS",
        "    axisFormat %H:%M:%S",
    ]
    ran = [r for r in j.records if _stamped(r.worker_started, r.worker_finished)]
    if ran:
        lines.append("    section Workers")
        for r in ran:
            tag = "done, " if r.state == "SUCCESS" else "crit, " if r.state in ("FAILED", "CRASHED") else ""
            lines.append(
                f"    {_label(r.id)} {r.state} :{tag}w{_id(r.id)}, {_when(r.worker_started)}, "
                f"{_when(r.worker_finished)}"
            )
    steps: list[tuple[str, str, str, str]] = [
        (e["start"], e["end"], e["name"], "") for e in j.events if e["name"] == "baseline"
    ]
    for r in j.records:
        if r.started_at and r.finished_at:
            tag = "done, " if r.verdict == MERGED else "crit, "
            steps.append((r.started_at, r.finished_at, f"{r.id} {r.verdict}", tag))
    steps += [
        (e["start"], e["end"], e["name"], "milestone, ")
        for e in j.events
        if e["name"] != "baseline" and "slot" not in e
    ]
    if steps:
        lines.append("    section Ceremony")
        for n, (start, end, name, tag) in enumerate(sorted(steps), 1):
            lines.append(f"    {_label(name)} :{tag}c{n}, {_when(start)}, {_when(end)}")
    runs = [e for e in j.events if "slot" in e and _stamped(e["start"], e["end"])]
    if runs:  # with --slots N: every test run a slot made, used (done) or not (red: crit)
        lines.append(f"    section Test slots ({j.slots})")
        tags = {"ok": "done, ", "red": "crit, ", "unused": ""}
        for n, e in enumerate(runs, 1):
            state = e.get("state", "")
            name = f"slot {e['slot']} {e['name']}{f' ({state})' if state in ('unused', 'stopped') else ''}"
            tag = tags.get(state, "")
            lines.append(f"    {_label(name)} :{tag}s{n}, {_when(e['start'])}, {_when(e['end'])}")
    return lines


def _id(worker_id: str) -> str:
    return re.sub(r"\W", "_", worker_id)


def _link(paths: PlanPaths, repo_rel: str, where: Path | None = None) -> str:
    """A repository-relative artifact as a link relative to the folder of a REPORT.md (merge/,
    or its ceremony's folder in merge/history/)."""
    if not repo_rel:
        return ""
    return os.path.relpath(paths.repo / repo_rel, where or paths.merge_dir).replace(os.sep, "/")


def _tail(path: Path, lines: int = 15) -> str:
    """The last lines of a test log, as evidence in REPORT.md (its last 64 KB are read)."""
    text = runlog.read(path, head=0, tail=64 * 1024)
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _sandbox_line(paths: PlanPaths) -> str:
    """What confined the ceremony's test runs, in words (boss.core.sandbox)."""
    from boss.core import sandbox
    from boss.core.config import load_config

    return sandbox.plan_line(load_config(paths.repo).sandbox)


def markdown(paths: PlanPaths, m: Manifest, j: Journal, where: Path | None = None) -> str:
    """REPORT.md's text, its links relative to the folder it is written to (where: merge/)."""
    data = report_data(paths, j)
    for w in data["workers"]:
        w["test_log_link"] = _link(paths, w["test_log"], where)
        w["retry_log_link"] = _link(paths, w["retry_log"], where)
        w["acceptance_log_link"] = _link(paths, w["acceptance_log"], where)
        decisive = w["retry_log"] or w["test_log"]
        w["output_tail"] = _tail(paths.repo / decisive) if w["verdict"] == "REVERTED" and decisive else ""
        mates = (x["id"] for x in data["workers"] if w["group"] and x["group"] == w["group"])
        w["group_mates"] = [x for x in mates if x != w["id"]]
    return _template().render(
        r=data,
        titles={w.id: w.title for w in m.workers},
        timeline=timeline(j),
        counts=counts_line(j),
        baseline_link=_link(paths, str(data["baseline"].get("log") or ""), where),
    )


_TEMPLATE: list[jinja2.Template] = []  # the compiled report template, once loaded


def _template() -> jinja2.Template:
    """The compiled report.md.j2 (Jinja is imported on first use: it takes tens of ms)."""
    if not _TEMPLATE:
        from boss.core.templates import make_env

        _TEMPLATE.append(make_env().get_template("report.md.j2"))
    return _TEMPLATE[0]


def warm_up() -> None:
    """Load Jinja and compile the template in the background while the merges run: the
    ceremony's main thread mostly waits for git and the tests, so the report is ready sooner."""

    def load() -> None:
        with contextlib.suppress(Exception):  # the report step loads it again and reports errors
            _template()

    threading.Thread(target=load, name="report-warm-up", daemon=True).start()


# --- the ceremony history: merge/history/<number>/ keeps each ceremony's report and logs ---


def next_number(paths: PlanPaths) -> int:
    """The number of a new ceremony: one above every folder in the history and the last journal's."""
    last = 0
    with contextlib.suppress(BossError):  # an unreadable journal is reported where it is resumed
        j = load_journal(paths.journal)
        last = j.number if j is not None else 0
    return max([last, *paths.ceremony_numbers()]) + 1


def write(paths: PlanPaths, m: Manifest, j: Journal) -> Path:
    """Write report.json and REPORT.md atomically into the ceremony's folder in the history,
    and the same as the latest in merge/ (REPORT.md's links fitted to each folder); the path
    of the kept REPORT.md. Written again whole when a killed ceremony resumes."""
    data = json.dumps(report_data(paths, j), indent=2) + "\n"
    folder = paths.ceremony_dir(j.number)
    targets = [folder, paths.merge_dir] if folder != paths.merge_dir else [folder]
    for where in targets:
        where.mkdir(parents=True, exist_ok=True)
        write_atomic(where / "report.json", data)
        write_atomic(where / "REPORT.md", markdown(paths, m, j, where))
    return folder / "REPORT.md"
