"""`worker run PLAN ID`: one worker's whole lifecycle under the mechanical gates (SPEC 5)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from boss.core import approvals, git, gitdir, proctree, runlog, scope, statelog
from boss.core import status as st
from boss.core.config import Config
from boss.core.errors import BossError, StateError
from boss.core.lock import LockBusy, locked
from boss.core.manifest import Manifest, Settings, Worker
from boss.core.mdtext import code, fence
from boss.core.paths import PlanPaths, integration_branch
from boss.core.proc import HELD_SIGNALS, Outcome, run_group, run_shell, stop_left_by
from boss.core.sandbox import Confinement, Sandbox
from boss.core.workspace import open_plan
from boss.core.worktrees import copy_files, tool_excludes
from boss.core.yamlio import write_atomic
from worker.agents import cli_config as agentconfig
from worker.agents.cli_config import AgentConfig
from worker.agents.profile import AgentProfile, AgentRun, agent_env, attempt_record
from worker.agents.registry import PROFILES, STATE_DIR, agent_sandbox, check_agents, get_profile, state_paths
from worker.autonomy.guard import AGENTS
from worker.lifecycle import broker, gates
from worker.lifecycle.blocker import StrategyRecord, counted, write_report
from worker.lifecycle.prompt import Feedback, iteration_prompt, tail, write_test_prompt
from worker.lifecycle.recorder import Recorder
from worker.lifecycle.worktree import Prepared, dependency_heads, prepare

Jail = Confinement | None
EXIT_CODES = {st.SUCCESS: 0, st.FAILED: 1, st.SCOPE_VIOLATION: 3}
# Caches a test run leaves behind; excluded so they are never taken for work.
JUNK = ["__pycache__/", "*.py[cod]", ".pytest_cache/"]


class EnforcementError(BossError):
    """The agent's guard judged fewer tool calls than the agent made."""


class GitDirChanged(BossError):
    """Agent code (the agent, or the test it wrote) changed the shared git directory."""


class CLIFailure(BossError):
    """The agent CLI itself failed (login, provider, quota, model) before doing any work."""


def run_owner(paths: PlanPaths, worker_id: str) -> str:
    """The owner part of the marker every process of this worker's runs carries (boss.core.proctree)."""
    return proctree.owner(str(paths.repo), paths.plan, worker_id)


def command_env(paths: PlanPaths, worker_id: str, worktree: Path) -> dict[str, str]:
    """The environment of the worker's test and setup: which worker, so ports and databases
    can be derived per worker (BOSS_WORKER, BOSS_WORKTREE)."""
    return {
        **os.environ,
        "BOSS_PLAN": paths.plan,
        "BOSS_WORKER": worker_id,
        "BOSS_WORKTREE": str(worktree),
        "BOSS_REPO": str(paths.repo),
    }


def short(commit: str) -> str:
    """An abbreviated commit for messages."""
    return commit[:10]


@dataclass
class _Run:
    """What one worker run carries from step to step."""

    paths: PlanPaths
    m: Manifest
    w: Worker
    settings: Settings
    profile: AgentProfile
    rec: Recorder
    wt: Prepared
    context: str
    sandbox: Sandbox
    iteration: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    frozen: tuple[str, ...] = ()  # the acceptance test's files, once the red gate froze them
    config: AgentConfig | None = None  # the agent-config paths, reset before each agent start
    last_failure: str | None = None  # the CLI's own error in the last agent run, if any
    expected: list[str] | None = None  # the test ids the red run's pytest report showed run
    log_cap: int = runlog.DEFAULT_CAP  # the most one run's log keeps (log_cap_mb in .boss/config.yaml)

    @property
    def dir(self) -> Path:
        return self.paths.worker_dir(self.w.id)

    @property
    def owner(self) -> str:
        return run_owner(self.paths, self.w.id)

    def child(self, pgid: int) -> None:
        """Show the running child's process group (for people and the pool; a rerun after a
        crash finds what to stop by the marker, not by this field, which an agent can forge)."""
        self.rec.update(child_pgid=pgid)

    def jail(
        self, *, network: bool, state: Collection[Path] = (), writable: Collection[Path] = ()
    ) -> AbstractContextManager[Confinement | None]:
        """The sandbox of one run in the worktree (None when there is none: boss.core.sandbox): it
        writes the worktree, but not the worktree's `.git` (which names the git directory boss
        uses there), a private copy of its CLI's `state`, and `writable`."""
        wt = self.wt.path
        return self.sandbox.confine(
            wt,
            writable=[wt, *writable],
            network=network,
            prefix=f"boss-{self.w.id}-",
            ephemeral=state,
            readonly=[wt / ".git"],
        )

    def watch(self) -> gitdir.Snapshot | None:
        """The shared git directory before agent code runs; its own branch and checkpoints, and
        the refs the plan's other workers move meanwhile, are free. None inside a sandbox, where
        the git directory is read-only (and your own git work meanwhile is not the agent's)."""
        if self.sandbox.active:
            return None
        plan, free = self.paths.plan, []
        for w in self.m.workers:
            free += [f"refs/heads/{w.branch}", f"refs/boss/checkpoints/{plan}/{w.id}/"]
            free += [f"refs/boss/{plan}/{w.id}/"] if w.id != self.w.id else []
        return gitdir.snapshot(self.paths.repo, free=free, worktree=self.wt.path)

    def put_back(self, before: gitdir.Snapshot | None, who: str) -> str | None:
        """Restore the git directory as before; the reason the worker fails when anything moved.

        A `boss merge` of the plan that ran meanwhile moves the base and integration branches."""
        if before is None:
            return None
        merging = _merged_since(self.paths, before.taken_at)
        base = [f"refs/heads/{self.m.base}", f"refs/heads/{integration_branch(self.paths.plan)}"]
        changes = gitdir.restore(before, free=base if merging else ())
        if not changes:
            return None
        shown = "; ".join(changes[:10]) + (f"; and {len(changes) - 10} more" if len(changes) > 10 else "")
        self.rec.event(self.w.id, "gitdir", f"{who} changed the git directory; put back: {shown}")
        return (
            f"{who} changed the repository's git directory, which boss put back: {shown}; "
            "nothing of this run is committed (the work is left in the worktree for inspection)"
        )

    def test(self, log: Path) -> tuple[Outcome, str, gates.GateRun]:
        wt = self.wt.path
        # The gate's report and private bytecode folder sit next to the log, outside the worktree
        # (writable in the test's sandbox: pytest writes them).
        report_dir = log.parent / "gate"
        gate = gates.prepare_run(self.w.test, wt, report_dir)
        before = self.watch()
        try:
            with self.jail(network=self.settings.test_network, writable=[report_dir]) as jail:
                outcome = run_shell(
                    gate.command,
                    cwd=wt,
                    env={**command_env(self.paths, self.w.id, wt), **gate.env},
                    log_path=log,
                    timeout=self.settings.test_timeout or None,
                    on_start=self.child,
                    owner=self.owner,
                    confine=jail,
                    log_cap=self.log_cap,
                )
        finally:  # interrupted too: what the test's code changed is put back
            changed = self.put_back(before, "the test")
        self.child(0)
        if changed:
            raise GitDirChanged(changed)
        output = runlog.read(log)
        if outcome.timed_out:
            # Say it in words: the agent, the log and the blocker report must not see a bare -15.
            limit = self.settings.test_timeout
            output += f"\n[boss] the test timed out after {limit}s (test_timeout) and was stopped\n"
        return outcome, output, gate

    def agent(self, prompt: str, strategy: int, adir: Path) -> Outcome:
        prompt_file, feedback_file = adir / "prompt.md", self.dir / "feedback.md"
        adir.mkdir(parents=True, exist_ok=True)
        prompt_file.write_text(prompt)
        run = AgentRun(
            plan=self.paths.plan,
            worker_id=self.w.id,
            repo=self.paths.repo,
            worktree=self.wt.path,
            context_file=self.paths.context(self.w.id),
            prompt_file=prompt_file,
            feedback_file=feedback_file,
            config_dir=self.paths.agent_config_dir(self.w.id),
            iteration=self.iteration,
            strategy=strategy,
            scope=self.w.scope,
            test_command=self.w.test,
            timeout=self.settings.agent_timeout,
            log_file=adir / "agent.log",
            frozen=self.frozen,
        )
        run.config_dir.mkdir(parents=True, exist_ok=True)
        config = self.reset_agent_config(strategy)
        inv = self.profile.invocation(run)
        config.mark()  # what the profile itself wrote there (Gemini's settings) is no change
        extra = {**agent_env(run), **inv.env}
        env = {**os.environ, **extra}
        record = attempt_record(self.profile, inv, extra, env)
        write_atomic(adir / "agent.json", json.dumps(record, indent=2) + "\n")
        log_size = statelog.size(self.paths.log)
        builtin = PROFILES.get(self.profile.name) is self.profile
        state = state_paths(self.profile.name, env) if builtin else []
        own = [run.config_dir / STATE_DIR] if builtin else []  # what a CLI writes that boss reads
        # The guard hooks judge through the worker (worker.lifecycle.broker): the agent cannot write the log.
        facts = broker.Facts.of(self.profile.name, run, env)
        before = self.watch()
        try:
            with (
                broker.serve(facts) as guard_endpoint,
                self.jail(network=True, state=state, writable=own) as jail,
            ):
                outcome = run_group(
                    inv.argv,
                    cwd=self.wt.path,
                    env={**env, **guard_endpoint.env()},
                    log_path=adir / "agent.log",
                    timeout=self.settings.agent_timeout or None,
                    stall=self.settings.stall_timeout or None,
                    on_start=self.child,
                    owner=self.owner,
                    confine=jail,
                    log_cap=self.log_cap,
                )
        finally:  # interrupted too: what the agent changed is put back
            changed = self.put_back(before, "the agent")
        self.child(0)
        output = runlog.read(adir / "agent.log")
        for key, value in self.profile.run_usage(run, output).items():
            self.usage[key] = round(self.usage.get(key, 0) + value, 6)
        how = " (timed out)" if outcome.timed_out else " (stalled: no output)" if outcome.stalled else ""
        self.rec.event(
            f"{self.w.id}.s{strategy}.i{self.iteration}",
            "agent",
            f"exit={outcome.exit_code}{how}",
            adir / "agent.log",
            usage=dict(self.usage),
        )
        if changed:
            raise GitDirChanged(changed)
        self.check_failure(output, adir / "agent.log")
        self.check_guard(output, log_size, record["version"], strategy)
        return outcome

    def reset_agent_config(self, strategy: int) -> AgentConfig:
        """Put the worktree's agent CLI configuration back to the start commit (worker.agents.cli_config)."""
        if self.config is None:
            self.config = AgentConfig(self.wt.path, self.wt.start, agentconfig.patterns(self.paths.repo))
        changed = self.config.reset()
        if changed:
            shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
            self.rec.event(
                f"{self.w.id}.s{strategy}.i{self.iteration}",
                "agent-config",
                f"reset to the start commit {short(self.wt.start)} before the agent starts: {shown}",
            )
        return self.config

    def check_failure(self, output: str, log: Path) -> None:
        """Raise CLIFailure when the CLI reports an error of its own and the run made no tool call."""
        message = self.last_failure = self.profile.failure(output)
        if not message or self.profile.tool_calls(output):
            return
        name = self.profile.name
        msg = (
            f"the {name} CLI failed before doing any work: {tail(message, 400).strip()} "
            f"({self.paths.rel(log)}); fix the CLI's login or provider, then "
            f"`boss retry {self.w.id} --plan {self.paths.plan}`"
        )
        raise CLIFailure(msg)

    def check_guard(self, output: str, log_size: int, version: str | None, strategy: int) -> None:
        """Raise EnforcementError when the guard judged fewer tool calls than the agent made."""
        if self.profile.name not in AGENTS:
            return
        calls = self.profile.tool_calls(output)
        if not calls:
            return
        iid = f"{self.w.id}.s{strategy}.i{self.iteration}"
        since = statelog.read(self.paths.log, since=log_size)
        judged = sum(1 for e in since if e.action == "guard" and e.iteration_id == iid)
        if judged >= calls:
            return
        name = self.profile.name
        on = f" ({version})" if version and version != "unknown" else ""
        never = (
            f" (the guard hook never ran although the agent made {calls} tool call(s))"
            if not judged
            else f" ({calls - judged} ran unjudged)"
        )
        msg = (
            f"the {name} guard judged {judged} of {calls} tool calls{never}: enforcement did not "
            f"hold on this CLI version{on} (see README, Tested with); the work was not judged, "
            "and is left uncommitted in the worktree for inspection"
        )
        raise EnforcementError(msg)


# Exit codes of a command that could not be run at all: 127 not found, 126 not executable.
CANNOT_RUN = (126, 127)


class _StopSignals:
    """Ctrl-C and SIGTERM (run_workers.sh's Ctrl-C handling) stop a worker, once.

    The first raises KeyboardInterrupt: the worker stops its agent's group and records FAILED
    "interrupted". Any later one is ignored: a terminal's Ctrl-C and the pool's SIGTERM reach a
    worker within a millisecond, and a second KeyboardInterrupt could land anywhere in the
    stopping (even before a `try`) and leave the agent's group running or the status untrue.
    """

    stopping = False

    @classmethod
    def handle(cls, signum: int, frame: FrameType | None) -> None:  # noqa: ARG003
        if cls.stopping:
            return
        cls.stopping = True
        raise KeyboardInterrupt


def install_stop_signals() -> None:
    """Ctrl-C and SIGTERM stop this worker process once (see _StopSignals); main thread only."""
    _StopSignals.stopping = False
    for sig in HELD_SIGNALS:
        signal.signal(sig, _StopSignals.handle)


def run_command(plan: str, worker_id: str, *, fresh: bool = False) -> int:
    """`worker run PLAN ID`: find the plan, run the worker, return its exit code."""
    install_stop_signals()
    paths, m, config = open_plan(plan)
    return EXIT_CODES[run_worker(paths, m, config, worker_id, fresh=fresh)]


def check_runnable(paths: PlanPaths, m: Manifest, config: Config, ids: Collection[str] = ()) -> None:
    """Raise for what would stop every run of the workers `ids` (all when empty) before it
    starts: an agent with no profile, a CONTEXT.md never rendered. run_workers.sh asks first."""
    if ids:
        for worker_id in ids:
            check_agents(m, config, str(paths.manifest), only=worker_id)
    else:
        check_agents(m, config, str(paths.manifest))  # every problem at once
    agent_sandbox(config, [m.settings(w).agent for w in m.workers if not ids or w.id in ids])
    for w in m.workers:
        context_file = paths.context(w.id)
        if (not ids or w.id in ids) and not context_file.is_file():
            msg = f"{context_file}: missing; run `boss render {paths.plan}` first"
            raise StateError(msg)


def run_worker(paths: PlanPaths, m: Manifest, config: Config, worker_id: str, *, fresh: bool = False) -> str:
    """Run one worker to its end state (SUCCESS, FAILED or SCOPE_VIOLATION) and return it."""
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
        return _run_locked(
            paths, m, w, settings, profile, context_file.read_text(), fresh, sandbox, config.log_cap
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
        # Whatever an earlier run of this worker left (killed with -9, say) carries its marker;
        # a process without it is never touched, whatever status.json says (child_pgid).
        if left := stop_left_by(run_owner(paths, w.id)):
            pids = ", ".join(map(str, left[:10])) + (" ..." if len(left) > 10 else "")
            rec.event(w.id, "reap", f"stopped {len(left)} process(es) left by an earlier run: {pids}")
        exclude_tool_files(paths)
        wt = prepare(paths, m, w, fresh=fresh)
        how = "created" if wt.created else "reset"
        rec.event(
            w.id, "worktree", f"{how} on {w.branch} at {short(wt.start)}", str(wt.path),
            worktree=str(wt.path), start_commit=wt.start, head_commit=wt.start,
        )  # fmt: skip
        run = _Run(paths, m, w, settings, profile, rec, wt, context, sandbox, log_cap=log_cap)
        if wt.created and not _setup(run):
            return _end(rec, st.FAILED, rec.status.reason)
        return _gated(run)
    except CLIFailure as e:
        # The same failure comes back on every iteration: no more runs, nothing committed, and
        # no blocker report that would blame the requirement.
        paths.blocker(w.id).unlink(missing_ok=True)  # an earlier run's report is not about this
        return _end(rec, st.FAILED, str(e), action="cli-failure")
    except EnforcementError as e:
        # Not rolled back and not committed: the branch does not move, a FAILED worker is never
        # merged, and the next run resets the worktree; until then a person can see what the
        # unguarded agent did (the agent.log names every tool call).
        return _end(rec, st.FAILED, str(e), action="enforcement")
    except GitDirChanged as e:
        return _end(rec, st.FAILED, str(e), action="gitdir")
    except KeyboardInterrupt:
        reason = f"interrupted during iteration {rec.status.iteration}; run it again to resume"
        _end(rec, st.FAILED, reason, action="interrupt")  # later signals are ignored (_StopSignals)
        raise
    except BossError as e:
        return _end(rec, st.FAILED, _one_line(e), action="error")
    except Exception as e:
        _end(rec, st.FAILED, f"internal error: {type(e).__name__}: {e}", action="error")
        raise
    finally:
        rec.stop_heartbeat()


def _merged_since(paths: PlanPaths, since_ns: int) -> bool:
    """True when a `boss merge` of the plan runs now, or wrote its journal after since_ns."""
    lock, journal = paths.merge_dir / "merge.lock", paths.merge_dir / "journal.json"
    with contextlib.suppress(OSError):
        if journal.stat().st_mtime_ns >= since_ns:
            return True
    if not lock.exists():
        return False
    try:
        with locked(lock, 0, ""):
            return False
    except LockBusy:
        return True


def exclude_tool_files(paths: PlanPaths) -> None:
    """Keep the tool's folders and test caches out of git status (.git/info/exclude)."""
    git.add_exclude(paths.repo, [*tool_excludes(paths), *JUNK])


def _one_line(err: BossError) -> str:
    """An error as one line: its first line, plus git's or the command's own last word."""
    first = str(err).splitlines()[0]
    stderr = getattr(err, "stderr", "").strip().splitlines()
    return f"{first}: {stderr[-1]}" if stderr else first


def _end(rec: Recorder, state: str, reason: str, action: str = "end") -> str:
    result = f"{state}: {reason}" if reason else state
    rec.event(rec.worker_id, action, result, state=state, reason=reason, finished_at=st.now_iso())
    return state


def _setup(run: _Run) -> bool:
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


def _gated(run: _Run) -> str:
    rec, w, wt = run.rec, run.w, run.wt
    frozen_paths: list[str] = []
    if w.write_test:
        run.iteration = 1
        rec.update(strategy=1, iteration=1)
        adir = run.paths.attempts(w.id) / "write-test"
        if cannot := _cannot_run(run, run.agent(write_test_prompt(run.context, w.test), 1, adir), adir):
            return cannot
        frozen_paths = scope.changed_since(wt.path, wt.start)
    red_log = run.paths.attempts(w.id) / "red" / "test.log"
    outcome, output, gate = run.test(red_log)
    verdict = gates.judge_red(outcome, w.test, output, w.write_test, gate)
    judged = gate.note or "pytest report"
    red = {"exit_code": outcome.exit_code, "log": run.paths.rel(red_log), "judged": judged}
    run.expected = gates.report_ids(gate) if verdict.ok else None
    if run.expected is not None:
        red["test_count"] = len(run.expected)
        if len(run.expected) <= 500:  # the status is rewritten often: a whole suite's ids stay out
            red["tests"] = run.expected
    note = f" ({gate.note})" if gate.note else ""
    rec.event(w.id, "red", f"{'ok' if verdict.ok else 'refused'}: {verdict.reason}{note}", red_log, red=red)
    if not verdict.ok:
        if w.write_test:
            git.reset_hard(wt.path, wt.start)
        return _end(rec, st.FAILED, f"red gate: {verdict.reason}")
    roots = sorted({*frozen_paths, *gates.test_paths(w.test, wt.path)})
    frozen = gates.Frozen(wt.path, roots, gates.harness_paths(w.test, wt.path, roots))
    if w.write_test:
        git.commit_all(wt.path, f"{w.id}: acceptance test ({w.title})")
    rec.update(red={**rec.status.red, "frozen": frozen.present, "digest": frozen.digest()})
    run.frozen = tuple(frozen.present)
    return _loop(run, frozen)


def _loop(run: _Run, frozen: gates.Frozen) -> str:
    rec, w, wt, settings = run.rec, run.w, run.wt, run.settings
    shifts: list[str] = []
    records: list[StrategyRecord] = []
    last_scope: list[str] = []
    s_start = git.head(wt.path) if run.w.write_test else wt.start
    for strategy in range(1, settings.max_strategies + 1):
        git.update_ref(run.paths.repo, f"refs/boss/{run.paths.plan}/{w.id}/strategy-{strategy}", s_start)
        feedback = Feedback()
        record = StrategyRecord(strategy, 0)
        for _ in range(settings.max_iterations):
            run.iteration += 1
            iid = f"{w.id}.s{strategy}.i{run.iteration}"
            adir = run.paths.attempts(w.id) / f"s{strategy}i{run.iteration}"
            rec.update(strategy=strategy, iteration=run.iteration)
            (run.dir / "feedback.md").write_text(feedback.text())
            prompt = iteration_prompt(run.context, feedback.text(3), strategy, run.iteration, shifts)
            agent = run.agent(prompt, strategy, adir)
            if cannot := _cannot_run(run, agent, adir):
                return cannot
            record.agent_exits.append(agent.exit_code)
            if run.last_failure:
                record.agent_failures.append(run.last_failure)
            record.agent_timeouts += agent.timed_out
            record.agent_stalls += agent.stalled
            tampered = frozen.restore()
            if tampered:
                rec.event(iid, "tamper", "refused changes to the acceptance test: " + ", ".join(tampered))
                record.tampered = sorted({*record.tampered, *tampered})
            outcome, output, gate = run.test(adir / "test.log")
            green = gates.judge_green(outcome, gate, run.expected)
            if green.ok:
                judged = {"judged": gate.note or "pytest report"}
                done = {"exit_code": 0, "log": run.paths.rel(adir / "test.log"), **judged}
                rec.event(iid, "test", f"pass {green.reason}", adir / "test.log", green=done)
                return _finish(run, iid)
            how = f"timed out after {settings.test_timeout}s" if outcome.timed_out else green.reason
            if outcome.exit_code == 0:  # exit 0, yet the report does not show the test passing
                output += f"\n[boss] the green gate refused this run: {green.reason}\n"
            rec.event(iid, "test", f"fail {how}", adir / "test.log")
            last_scope = scope.described(scope.problems(wt.path, run.wt.start, w.scope))
            feedback = Feedback(output, outcome.exit_code, last_scope, tampered, _agent_note(agent, settings))
            record.iterations += 1
            record.last_exit, record.last_output = outcome.exit_code, output
            record.log = run.paths.rel(adir)
        record.changed = scope.changed_since(wt.path, s_start)
        records.append(record)
        git.reset_hard(wt.path, s_start)
        if strategy < settings.max_strategies:
            shifts.append(_shift_summary(record))
            rec.event(
                f"{w.id}.s{strategy}",
                "STRATEGY SHIFT",
                f"strategy {strategy} failed {record.iterations} times; rolled back to "
                f"{short(s_start)}; strategy {strategy + 1} must try another approach",
            )
    git.reset_hard(wt.path, wt.start)
    blocker = run.paths.blocker(w.id)
    folder = run.paths.approvals_dir
    since = rec.status.started_at  # requests of earlier runs nobody decided did not block this one
    requests = approvals.list_requests(folder, approvals.PENDING)
    pending = [r for r in requests if r.worker == w.id and r.created_at >= since]
    write_report(blocker, w.id, w.title, w.test, records, last_scope, plan=run.paths.plan, pending=pending)
    waiting = f"; {len(pending)} approval request(s) pending (boss approvals)" if pending else ""
    reason = (
        f"gave up after {counted(run.iteration, 'iteration')} in {counted(len(records), 'strategy')}"
        f"{waiting}; see {run.paths.rel(blocker)}"
    )
    rec.event(w.id, "blocker", reason, blocker)
    return _end(rec, st.FAILED, reason)


def _cannot_run(run: _Run, agent: Outcome, adir: Path) -> str | None:
    """End the worker FAILED when its agent could not be run at all; None when it ran.

    A missing or non-executable agent fails the same way every time: iterating is pointless.
    Only its first run is judged so: once it ran, a later 127 is the agent's own business.
    """
    if run.iteration > 1 or agent.exit_code not in CANNOT_RUN or agent.timed_out or agent.stalled:
        return None
    git.reset_hard(run.wt.path, run.wt.start)
    why = "not found" if agent.exit_code == 127 else "not executable"
    log = run.paths.rel(adir / "agent.log")
    reason = f"the agent cannot run (exit {agent.exit_code}: command {why}); see {log}"
    return _end(run.rec, st.FAILED, reason)


def _agent_note(agent: Outcome, settings: Settings) -> str:
    """What the next prompt must know about how the last agent run ended."""
    if agent.timed_out:
        return (
            f"Your last run was stopped after {settings.agent_timeout}s (agent_timeout) before it "
            "finished: work in smaller steps and leave the code in a state the test can run."
        )
    if agent.stalled:
        return (
            f"Your last run was stopped after {settings.stall_timeout}s without any output "
            "(stall_timeout): do not wait on anything interactive or long-running."
        )
    return ""


def _shift_summary(record: StrategyRecord) -> str:
    changed = ", ".join(code(c) for c in record.changed[:20]) or "nothing"
    output = tail(record.last_output, 2000).rstrip() or "(the test printed nothing)"
    return (
        f"### Strategy {record.number} failed after {counted(record.iterations, 'iteration')}\n\n"
        f"Files it changed: {changed}\n\nIts last test output:\n\n{fence(output)}"
    )


def _finish(run: _Run, iid: str) -> str:
    rec, w, wt = run.rec, run.w, run.wt
    head = git.commit_all(
        wt.path, f"{w.id}: {w.title}\n\nboss worker, plan {run.paths.plan}, iteration {run.iteration}"
    )
    head = head or git.head(wt.path)
    rec.event(iid, "commit", short(head), head_commit=head)
    run.paths.blocker(w.id).unlink(missing_ok=True)  # an earlier run's report: this one finished
    found = scope.branch_problems(run.paths.repo, wt.start, head, w.scope)
    if found:
        violations, said = list(found), scope.described(found)
        rec.event(iid, "scope", "violation: " + ", ".join(said), violations=violations)
        shown = ", ".join(said[:5]) + (f" and {len(said) - 5} more" if len(said) > 5 else "")
        return _end(rec, st.SCOPE_VIOLATION, f"changed files outside its scope: {shown}")
    rec.event(iid, "scope", "ok")
    return _end(rec, st.SUCCESS, "")


def skip_worker(paths: PlanPaths, m: Manifest, worker_id: str, reason: str) -> None:
    """Mark a worker SKIPPED (a dependency did not succeed), with the reason."""
    w = m.worker(worker_id)
    rec = Recorder(paths, w.id, st.Status(plan=paths.plan, id=w.id, branch=w.branch))
    _end(rec, st.SKIPPED, reason, action="skip")
