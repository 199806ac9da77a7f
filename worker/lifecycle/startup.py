"""The start of a run: what an earlier run left stopped, the worktree prepared, copy and setup done.

Processes an earlier run of the worker left (killed with -9, say) are found by the marker they
carry (boss.core.proctree) and stopped; the tool's folders and test caches are kept out of git
status; the worktree is created or reset (worker.lifecycle.worktree). In a new worktree, the
manifest's `copy` files are copied and its `setup` command runs once, in the sandbox.
"""

from __future__ import annotations

from boss.core import git, redo, runlog
from boss.core.manifest import Manifest, Settings, Worker
from boss.core.paths import PlanPaths
from boss.core.proc import run_shell, stop_left_by
from boss.core.sandbox import Sandbox
from boss.core.worktrees import copy_files, tool_excludes
from worker.agents.profile import AgentProfile
from worker.lifecycle.recorder import Recorder
from worker.lifecycle.session import Run, command_env, run_owner, short
from worker.lifecycle.worktree import prepare

# Caches a test run leaves behind; excluded so they are never taken for work.
JUNK = ["__pycache__/", "*.py[cod]", ".pytest_cache/"]


def open_run(
    paths: PlanPaths,
    m: Manifest,
    w: Worker,
    settings: Settings,
    profile: AgentProfile,
    rec: Recorder,
    context: str,
    sandbox: Sandbox,
    *,
    fresh: bool,
    log_cap: int = runlog.DEFAULT_CAP,
    onto: str | None = None,
) -> Run:
    """Stop what an earlier run left, prepare the worktree (`fresh`: from scratch), and return the run."""
    # Whatever an earlier run of this worker left (killed with -9, say) carries its marker;
    # a process without it is never touched, whatever status.json says (child_pgid).
    if left := stop_left_by(run_owner(paths, w.id)):
        pids = ", ".join(map(str, left[:10])) + (" ..." if len(left) > 10 else "")
        rec.event(w.id, "reap", f"stopped {len(left)} process(es) left by an earlier run: {pids}")
    exclude_tool_files(paths)
    wt = prepare(paths, m, w, fresh=fresh, onto=onto)
    how = "created" if wt.created else "reset"
    rec.event(
        w.id, "worktree", f"{how} on {w.branch} at {short(wt.start)}", str(wt.path),
        worktree=str(wt.path), start_commit=wt.start, head_commit=wt.start,
    )  # fmt: skip
    why = redo.read_feedback(paths, w.id) if onto is not None else ""
    if why:
        rec.event(w.id, "redo", f"on the base at {short(wt.start)}", redo.feedback_path(paths, w.id))
    return Run(paths, m, w, settings, profile, rec, wt, context, sandbox, log_cap=log_cap, redo=why)


def exclude_tool_files(paths: PlanPaths) -> None:
    """Keep the tool's folders and test caches out of git status (.git/info/exclude)."""
    git.add_exclude(paths.repo, [*tool_excludes(paths), *JUNK])


def setup(run: Run) -> bool:
    """Copy the manifest's files into the new worktree and run its setup command; False when it failed
    (the status's reason says why)."""
    copied = copy_files(run.paths.repo, run.wt.path, run.m.copy)
    if copied:
        run.rec.event(run.w.id, "copy", ", ".join(copied))
    if not run.m.setup.strip():
        return True
    log = run.paths.attempts(run.w.id) / "setup.log"
    wt = run.wt.path
    env = command_env(run.paths, run.w.id, wt)
    # Setup installs what the tests need: it keeps the network, and writes only the worktree.
    with run.jail(network=True) as jail:
        outcome = run_shell(
            run.m.setup, cwd=wt, env=env, log_path=log, owner=run.owner, confine=jail, log_cap=run.log_cap
        )
    ok = outcome.exit_code == 0
    run.rec.event(run.w.id, "setup", f"{'ok' if ok else 'fail'} exit={outcome.exit_code}", log)
    if not ok:
        run.rec.update(reason=f"setup failed (exit {outcome.exit_code}); see {run.paths.rel(log)}")
    return ok
