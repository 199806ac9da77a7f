"""One run of a test command the ceremony judges, wherever it runs: here, or on a cluster node.

`execute` is the one place such a run happens (boss/ceremony/integration.py runs every
integration and acceptance test through it here; worker/engine/ceremony_node.py on a node):
in the project's sandbox, writing only its worktree and a private TMPDIR, no bytecode read from
the tree, and where the command runs pytest, a junit report asked for (PYTEST_ADDOPTS) so its
failing tests are known. `Remote` is what the ceremony's test slots need of a place elsewhere
that runs them (`boss merge --engine dask`): the engine implements it, the ceremony only uses it.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from boss.core.proc import run_shell
from boss.core.pytest_report import clean_caches, is_pytest, run_env
from boss.core.sandbox import Sandbox

OnStart = Callable[[int], None]  # told the process group of a run that starts (to stop it early)


@dataclass(frozen=True)
class Ran:
    """What one run of a test command came to."""

    exit_code: int
    elapsed: float
    failures: list[str] | None = None  # failing pytest ids; None when there is no junit report
    timed_out: bool = False


def execute(
    command: str,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    jail: Sandbox,
    limit: float | None,
    network: bool,
    log_cap: int,
    owner: str,
    on_start: OnStart | None = None,
) -> Ran:
    """Run command in cwd (its output to log) as the ceremony judges it; env is updated."""
    # The worktree's .git (a file or a folder) stays read-only: a test that rewrote it would steer
    # boss's next git command in this worktree (the merge, the next candidate's checkout).
    git_link = [cwd / ".git"] if (cwd / ".git").exists() else []
    with jail.confine(
        cwd, writable=[cwd], network=network, prefix="boss-merge-", readonly=git_link
    ) as confine:
        scratch = confine.tmp if confine is not None else log.parent / f"{log.stem}.gate"
        shutil.rmtree(scratch / "pycache", ignore_errors=True)
        clean_caches(cwd)
        env.update(run_env(scratch))
        junit: Path | None = None
        if is_pytest(command):
            junit = scratch / "junit.xml"
            junit.unlink(missing_ok=True)
            scratch.mkdir(parents=True, exist_ok=True)
            env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} --junitxml={junit}".strip()
        outcome = run_shell(
            command, cwd=cwd, env=env, log_path=log, timeout=limit, confine=confine,
            log_cap=log_cap, on_start=on_start, owner=owner,
        )  # fmt: skip
        failures = junit_failures(junit) if junit is not None else None
        if confine is None:  # the history keeps the log, not the run's report and bytecode
            shutil.rmtree(scratch, ignore_errors=True)
    return Ran(outcome.exit_code, outcome.elapsed, failures, outcome.timed_out)


def junit_failures(path: Path) -> list[str] | None:
    """The ids of the failing tests in a junit report; None when there is no readable report."""
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - written by pytest, in our own run, just now
    except (OSError, ET.ParseError):
        return None
    failing = set()
    for case in root.iter("testcase"):
        if any(child.tag in ("failure", "error") for child in case):
            classname, name = case.get("classname", ""), case.get("name", "")
            failing.add(f"{classname}::{name}" if classname else name)
    return sorted(failing)


@dataclass(frozen=True)
class Request:
    """One test run the ceremony wants made elsewhere: `kind` int (the integration test) or acc
    (worker's acceptance test) of command on the tree of commit, with its limit and network; a
    new slot is set up at the ceremony's base first, as here."""

    name: str  # the run's log name, as here
    kind: str
    commit: str
    base: str
    command: str
    worker: str
    limit: float | None
    network: bool


Cancel = Callable[[], None]  # stops a run that is under way


class Remote(Protocol):
    """A place elsewhere that runs the ceremony's test slots (worker/engine/ceremony_slots.py)."""

    @property
    def slots(self) -> int:
        """How many runs it makes at once."""

    @property
    def where(self) -> str:
        """Its name in progress lines and the report."""

    def run(self, request: Request, started: Callable[[Cancel], None]) -> tuple[Ran, bytes, str]:
        """Make one run; (what it came to, its log's bytes, the node's name). `started` gets a
        function that stops it; BossError when it cannot be made."""

    def close(self) -> None:
        """Nothing more will run: leave no trace of this ceremony elsewhere."""
