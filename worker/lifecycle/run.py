"""One worker's whole run under the mechanical gates (SPEC 5), from its checks to its end state.

run_worker checks what would stop every run (check_runnable), takes the worker's run lock, and
records the start; then the run is opened (worker.lifecycle.startup), gated and looped
(worker.lifecycle.loop) and finished (worker.lifecycle.finish). Here every way a run can stop
early becomes its recorded end state: a failed CLI, a provider's limit that did not clear, a guard
that did not hold, a changed git directory, an interrupt, an error.
"""

from __future__ import annotations

import os
from collections.abc import Collection

from boss.core import handwork, runlog
from boss.core import status as st
from boss.core.config import Config
from boss.core.errors import BossError, StateError
from boss.core.lock import locked
from boss.core.manifest import Manifest, Settings, Worker
from boss.core.paths import PlanPaths
from boss.core.sandbox import Sandbox
from worker.agents.profile import AgentProfile
from worker.agents.registry import agent_sandbox, check_agents, get_profile
from worker.lifecycle import budget
from worker.lifecycle.attempt import CLIFailure, EnforcementError
from worker.lifecycle.backoff import LimitNotCleared
from worker.lifecycle.budget import BudgetReached
from worker.lifecycle.loop import gated
from worker.lifecycle.recorder import Recorder
from worker.lifecycle.session import GitDirChanged
from worker.lifecycle.startup import open_run, setup
from worker.lifecycle.worktree import dependency_heads


def check_runnable(paths: PlanPaths, m: Manifest, config: Config, ids: Collection[str] = ()) -> None:
    """Raise for what would stop every run of the workers `ids` (all when empty) before it
    starts: an agent with no profile, a CONTEXT.md never rendered. run_workers.sh asks first."""
    if ids:
        for worker_id in ids:
            check_agents(m, config, str(paths.manifest), only=worker_id)
    else:
        check_agents(m, config, str(paths.manifest))  # every problem at once
    budget.check_costs(paths, m, list(ids))  # a cost cap on a CLI that reports no cost
    agent_sandbox(config, [m.settings(w).agent for w in m.workers if not ids or w.id in ids])
    for w in m.workers:
        context_file = paths.context(w.id)
        if (not ids or w.id in ids) and not context_file.is_file():
            msg = f"{context_file}: missing; run `boss render {paths.plan}` first"
            raise StateError(msg)


def run_worker(
    paths: PlanPaths,
    m: Manifest,
    config: Config,
    worker_id: str,
    *,
    fresh: bool = False,
    onto: str | None = None,
    discard: bool = False,
) -> str:
    """Run one worker to its end state (SUCCESS, FAILED or SCOPE_VIOLATION) and return it; `onto`:
    from that commit of the base, with workers/<id>/redo.md as the first feedback (boss.core.redo).

    A run resets the branch to its start: commits on it that boss did not make (a person's)
    stop it before anything changes (StateError naming them), unless `discard`."""
    w = m.worker(worker_id)
    settings = m.settings(w)
    check_runnable(paths, m, config, [w.id])
    profile = get_profile(settings.agent, config)
    sandbox = agent_sandbox(config, [settings.agent])
    context_file = paths.context(w.id)
    dependency_heads(paths, w)  # refuse early, without touching the status
    paths.worker_dir(w.id).mkdir(parents=True, exist_ok=True)
    busy = f"worker {w.id} of plan {paths.plan} is already running in another process"
    with locked(paths.worker_dir(w.id) / "run.lock", 0, busy):
        if not discard:  # before the status is rewritten: it is one of the records that tell
            handwork.refuse_discard(paths, w.id, w.branch, "this run")
        return _run_locked(
            paths, m, w, settings, profile, context_file.read_text(), fresh, sandbox, config.log_cap, onto
        )


def _run_locked(
    paths: PlanPaths,
    m: Manifest,
    w: Worker,
    settings: Settings,
    profile: AgentProfile,
    context: str,
    fresh: bool,
    sandbox: Sandbox,
    log_cap: int = runlog.DEFAULT_CAP,
    onto: str | None = None,
) -> str:
    now = st.now_iso()
    rec = Recorder(paths, w.id, st.Status(plan=paths.plan, id=w.id, branch=w.branch))
    try:
        start = f"agent={settings.agent} test={w.test}"
        jail = sandbox.label() if sandbox.active else sandbox.describe()
        rec.event(w.id, "start", start, state=st.RUNNING, started_at=now, pid=os.getpid(), sandbox=jail)
        if not sandbox.active:
            rec.event(w.id, "sandbox", f"runs without a sandbox: {sandbox.describe()}")
        rec.start_heartbeat()
        if why := budget.refuse_spent(paths, m, w):  # before the worktree: no agent run starts
            raise BudgetReached(why)
        run = open_run(
            paths, m, w, settings, profile, rec, context, sandbox, fresh=fresh, log_cap=log_cap, onto=onto
        )
        if run.wt.created and not setup(run):
            return rec.end(st.FAILED, rec.status.reason)
        return gated(run)
    except CLIFailure as e:
        # The same failure comes back on every iteration: no more runs, nothing committed, and
        # no blocker report that would blame the requirement.
        paths.blocker(w.id).unlink(missing_ok=True)  # an earlier run's report is not about this
        return rec.end(st.FAILED, str(e), action="cli-failure")
    except LimitNotCleared as e:
        # Not the code's fault either: no blocker report (an earlier run's is not about this).
        paths.blocker(w.id).unlink(missing_ok=True)
        return rec.end(st.FAILED, str(e), action="rate-limit")
    except BudgetReached as e:
        # What was spent, on what: the report says it; the worktree keeps what the agent did.
        ledger = budget.settle(paths, w.id)
        budget.write_report(paths.blocker(w.id), w.id, w.title, str(e), ledger, paths.plan)
        return rec.end(st.FAILED, f"{e}; see {paths.rel(paths.blocker(w.id))}", action="budget")
    except EnforcementError as e:
        # Not rolled back and not committed: the branch does not move, a FAILED worker is never
        # merged, and the next run resets the worktree; until then a person can see what the
        # unguarded agent did (the agent.log names every tool call).
        return rec.end(st.FAILED, str(e), action="enforcement")
    except GitDirChanged as e:
        return rec.end(st.FAILED, str(e), action="gitdir")
    except KeyboardInterrupt:
        reason = f"interrupted during iteration {rec.status.iteration}; run it again to resume"
        rec.end(st.FAILED, reason, action="interrupt")  # later signals are ignored (worker.lifecycle.signals)
        raise
    except BossError as e:
        return rec.end(st.FAILED, _one_line(e), action="error")
    except Exception as e:
        rec.end(st.FAILED, f"internal error: {type(e).__name__}: {e}", action="error")
        raise
    finally:
        rec.stop_heartbeat()


def _one_line(err: BossError) -> str:
    """An error as one line: its first line, plus git's or the command's own last word."""
    first = str(err).splitlines()[0]
    stderr = getattr(err, "stderr", "").strip().splitlines()
    return f"{first}: {stderr[-1]}" if stderr else first
