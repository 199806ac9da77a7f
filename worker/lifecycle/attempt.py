"""One agent attempt: the agent CLI started in the worktree, and what its run must not get away with.

Before each start the worktree's agent-CLI configuration is put back to the start commit; the
agent runs in the run's sandbox with its guard served by the worker (worker.lifecycle.broker),
the shared git directory watched (GitDirChanged). After it, in this order: a guard that judged
fewer tool calls than the agent made stops the worker (EnforcementError); a run that ended on its
provider's rate limit or overload is no iteration (RateLimited: worker.lifecycle.backoff waits and
runs it again); a CLI that failed before doing any work stops the worker (CLIFailure).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from boss.core import runlog, statelog
from boss.core.errors import BossError
from boss.core.proc import Outcome, run_group
from boss.core.yamlio import write_atomic
from worker.agents import cli_config as agentconfig
from worker.agents.cli_config import AgentConfig
from worker.agents.profile import AgentRun, agent_env, attempt_record
from worker.agents.ratelimit import RateLimit
from worker.agents.registry import PROFILES, STATE_DIR, state_paths
from worker.autonomy.guard import JUDGED
from worker.lifecycle import broker, budget
from worker.lifecycle.budget import BudgetReached
from worker.lifecycle.prompt import tail
from worker.lifecycle.session import GitDirChanged, Run, short


class EnforcementError(BossError):
    """The agent's guard judged fewer tool calls than the agent made."""


class CLIFailure(BossError):
    """The agent CLI itself failed (login, provider, quota, model) before doing any work."""


class RateLimited(BossError):
    """The agent run ended on its provider's rate limit or overload (the CLI gave up retrying)."""

    def __init__(self, limit: RateLimit) -> None:
        super().__init__(limit.message)
        self.limit = limit


def run_agent(run: Run, prompt: str, strategy: int, adir: Path) -> Outcome:
    """Start the agent once, in the worktree and the run's sandbox, its files in `adir`; the outcome.

    Raises:
        GitDirChanged: the agent changed the shared git directory (which is put back).
        EnforcementError: the guard judged fewer tool calls than the agent made.
        RateLimited: the run ended on its provider's rate limit or overload.
        CLIFailure: the CLI failed before doing any work.
        BudgetReached: a cap was reached before the run (none starts) or during it (it was stopped).
    """
    if why := budget.refuse_spent(run.paths, run.m, run.w):
        raise BudgetReached(why)
    prompt_file, feedback_file = adir / "prompt.md", run.dir / "feedback.md"
    adir.mkdir(parents=True, exist_ok=True)
    prompt_file.write_text(prompt)
    agent_run = AgentRun(
        plan=run.paths.plan,
        worker_id=run.w.id,
        repo=run.paths.repo,
        worktree=run.wt.path,
        context_file=run.paths.context(run.w.id),
        prompt_file=prompt_file,
        feedback_file=feedback_file,
        config_dir=run.paths.agent_config_dir(run.w.id),
        iteration=run.iteration,
        strategy=strategy,
        scope=run.w.scope,
        test_command=run.w.test,
        timeout=run.settings.agent_timeout,
        log_file=adir / "agent.log",
        frozen=run.frozen,
        confined=run.sandbox.active,
    )
    agent_run.config_dir.mkdir(parents=True, exist_ok=True)
    config = reset_agent_config(run, strategy)
    inv = run.profile.invocation(agent_run)
    follower = budget.Follower(run.paths, run.m, run.w, run.profile, agent_run)
    timeout, cut = budget.timeout(run.settings, follower.ledger)
    claude_cap = budget.claude_cap(run, follower.ledger, inv.argv)
    config.mark()  # what the profile itself wrote there (Gemini's settings) is no change
    extra = {**agent_env(agent_run), **inv.env}
    env = {**os.environ, **extra}
    record = attempt_record(run.profile, inv, extra, env)
    write_atomic(adir / "agent.json", json.dumps(record, indent=2) + "\n")
    log_size = statelog.size(run.paths.log)
    builtin = PROFILES.get(run.profile.name) is run.profile
    state = state_paths(run.profile.name, env) if builtin else []
    own = [agent_run.config_dir / STATE_DIR] if builtin else []  # what a CLI writes that boss reads
    # The guard hooks judge through the worker (worker.lifecycle.broker): the agent cannot write the log.
    facts = broker.Facts.of(run.profile.name, agent_run, env)
    before = run.watch()
    try:
        with (
            broker.serve(facts) as guard_endpoint,
            run.jail(network=True, state=state, writable=own) as jail,
        ):
            outcome = run_group(
                inv.argv,
                cwd=run.wt.path,
                env={**env, **guard_endpoint.env()},
                log_path=adir / "agent.log",
                timeout=timeout,
                stall=run.settings.stall_timeout or None,
                on_start=run.child,
                owner=run.owner,
                confine=jail,
                log_cap=run.log_cap,
                follow=follower,
            )
    finally:  # interrupted too: what the agent changed is put back
        changed = run.put_back(before, "the agent")
    run.child(0)
    output = runlog.read(adir / "agent.log")
    used = run.profile.run_usage(agent_run, output)
    for key, value in used.items():
        run.usage[key] = round(run.usage.get(key, 0) + value, 6)
    iid = f"{run.w.id}.s{strategy}.i{run.iteration}"
    why = budget.stop_reason(follower, outcome, cut, claude_cap, output)
    ledger = follower.book(iid + (f" ({adir.name})" if adir.name != f"s{strategy}i{run.iteration}" else ""),
                           used, outcome.elapsed, stopped=why is not None)  # fmt: skip
    how = " (timed out)" if outcome.timed_out else " (stalled: no output)" if outcome.stalled else ""
    how = f" (stopped: {why})" if why is not None else how
    run.rec.event(
        iid,
        "agent",
        f"exit={outcome.exit_code}{how}",
        adir / "agent.log",
        usage=dict(run.usage),
    )
    if changed:
        raise GitDirChanged(changed)
    # A limit does not excuse an unjudged tool call; a CLI's own error that is a limit is no failure.
    # A run stopped at a cap may end inside a tool call its hook had not judged yet: the hook runs
    # before the tool, so that one never ran; one such call is the stop's, not enforcement's.
    check_guard(run, output, log_size, record["version"], strategy, slack=int(why is not None))
    if why is not None:  # stopped at a cap: neither a limit nor a failure of the CLI
        raise BudgetReached(budget.stopped_reason(why, ledger, run.profile.name, run.iteration))
    limit = run.profile.rate_limit(output)
    if limit is not None:
        raise RateLimited(limit)
    check_failure(run, output, adir / "agent.log")
    return outcome


def reset_agent_config(run: Run, strategy: int) -> AgentConfig:
    """Put the worktree's agent CLI configuration back to the start commit (worker.agents.cli_config)."""
    if run.config is None:
        run.config = AgentConfig(run.wt.path, run.wt.start, agentconfig.patterns(run.paths.repo))
    changed = run.config.reset()
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        run.rec.event(
            f"{run.w.id}.s{strategy}.i{run.iteration}",
            "agent-config",
            f"reset to the start commit {short(run.wt.start)} before the agent starts: {shown}",
        )
    return run.config


def check_failure(run: Run, output: str, log: Path) -> None:
    """Raise CLIFailure when the CLI reports an error of its own and the run made no tool call."""
    message = run.last_failure = run.profile.failure(output)
    if not message or run.profile.tool_calls(output):
        return
    name = run.profile.name
    msg = (
        f"the {name} CLI failed before doing any work: {tail(message, 400).strip()} "
        f"({run.paths.rel(log)}); fix the CLI's login or provider, then "
        f"`boss retry {run.w.id} --plan {run.paths.plan}`"
    )
    raise CLIFailure(msg)


def check_guard(
    run: Run, output: str, log_size: int, version: str | None, strategy: int, slack: int = 0
) -> None:
    """Raise EnforcementError when the guard judged fewer tool calls than the agent made (less slack)."""
    if run.profile.name not in JUDGED:
        return
    calls = run.profile.tool_calls(output)
    if not calls:
        return
    iid = f"{run.w.id}.s{strategy}.i{run.iteration}"
    since = statelog.read(run.paths.log, since=log_size)
    judged = sum(1 for e in since if e.action == "guard" and e.iteration_id == iid)
    if judged + slack >= calls:
        return
    name = run.profile.name
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
