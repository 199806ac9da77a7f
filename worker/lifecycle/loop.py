"""The gated loop of one run: the red gate, then agent/test iterations with strategy shifts.

With write_test, the agent first writes the acceptance test. The red gate must see it fail; its
files are then frozen. Each iteration starts the agent with the last test output as feedback and
runs the test through the green gate; a pass goes on to worker.lifecycle.finish. A strategy that
fails max_iterations times is rolled back to where it started, and the next one is told what it
tried; when the last one fails, the worker gives up with a blocker report (BLOCKER_REPORT.md).
An agent run that ended on its provider's rate limit is no iteration: worker.lifecycle.backoff
waits and runs it again.
"""

from __future__ import annotations

from pathlib import Path

from boss.core import approvals, git, scope, testfiles
from boss.core import status as st
from boss.core.manifest import Settings
from boss.core.mdtext import code, fence
from boss.core.proc import Outcome
from worker.lifecycle import gates
from worker.lifecycle.backoff import run_clear
from worker.lifecycle.blocker import StrategyRecord, counted, write_report
from worker.lifecycle.finish import finish
from worker.lifecycle.prompt import Feedback, iteration_prompt, tail, write_test_prompt
from worker.lifecycle.session import Run, short

# Exit codes of a command that could not be run at all: 127 not found, 126 not executable.
CANNOT_RUN = (126, 127)


def gated(run: Run) -> str:
    """Run the red gate (after the agent wrote the test, with write_test), then the loop; the end state."""
    rec, w, wt = run.rec, run.w, run.wt
    frozen_paths: list[str] = []
    if w.write_test:
        run.iteration = 1
        rec.update(strategy=1, iteration=1)
        first = run.paths.attempts(w.id) / "write-test"
        agent, adir = run_clear(run, write_test_prompt(run.context, w.test), 1, first)
        if cannot := _cannot_run(run, agent, adir):
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
        return rec.end(st.FAILED, f"red gate: {verdict.reason}")
    roots = sorted({*frozen_paths, *testfiles.test_paths(w.test, wt.path)})
    frozen = gates.Frozen(wt.path, roots, gates.harness_paths(w.test, wt.path, roots))
    if w.write_test:
        git.commit_all(wt.path, f"{w.id}: acceptance test ({w.title})")
        rec.update(head_commit=git.head(wt.path))  # boss's commit, not a person's
    rec.update(red={**rec.status.red, "frozen": frozen.present, "digest": frozen.digest()})
    run.frozen = tuple(frozen.present)
    return _loop(run, frozen)


def _loop(run: Run, frozen: gates.Frozen) -> str:
    rec, w, wt, settings = run.rec, run.w, run.wt, run.settings
    shifts: list[str] = []
    records: list[StrategyRecord] = []
    last_scope: list[str] = []
    s_start = git.head(wt.path) if run.w.write_test else wt.start
    for strategy in range(1, settings.max_strategies + 1):
        git.update_ref(run.paths.repo, f"refs/boss/{run.paths.plan}/{w.id}/strategy-{strategy}", s_start)
        feedback = Feedback(redo=run.redo)  # a redo's reason is each strategy's first feedback
        record = StrategyRecord(strategy, 0)
        for _ in range(settings.max_iterations):
            run.iteration += 1
            iid = f"{w.id}.s{strategy}.i{run.iteration}"
            adir = run.paths.attempts(w.id) / f"s{strategy}i{run.iteration}"
            rec.update(strategy=strategy, iteration=run.iteration)
            (run.dir / "feedback.md").write_text(feedback.text())
            prompt = iteration_prompt(run.context, feedback.text(3), strategy, run.iteration, shifts)
            agent, adir = run_clear(run, prompt, strategy, adir)  # a rate-limited run is no iteration
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
                return finish(run, iid)
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
    return rec.end(st.FAILED, reason)


def _cannot_run(run: Run, agent: Outcome, adir: Path) -> str | None:
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
    return run.rec.end(st.FAILED, reason)


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
