#!/usr/bin/env python3
"""Benchmark the workers: parallel efficiency, and the worker's own overhead per iteration.

1. Parallel efficiency: N workers whose agent sleeps S seconds, run by run_workers.sh -j J.
   The ideal wall time is what one such worker takes alone (perfect parallelism would run N
   of them in that time); efficiency = ideal / measured. Also printed against S alone.
2. Overhead: one iteration of `worker run` with an agent and a test that do nothing, against
   a plain bash script doing the git work a worker needs (worktree add, red test, agent,
   test, add, commit, diff for the scope check), in the same run; printed as a ratio.
3. The sandbox's cost (boss.core.sandbox, bubblewrap): one agent run and one test run (each a
   command doing nothing, started by boss.core.proc.run_group as the worker does) inside their
   sandbox against the same run unsandboxed, and one whole `worker run` with `sandbox: auto`
   against `sandbox: off`; printed as milliseconds added (bar: under 50 ms each).

Usage: python scripts/bench_workers.py [--workers 8] [--jobs 8] [--sleep 2] [--repeat 5] [--only-sandbox]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = r"""
set -euo pipefail
repo="$1"; n="$2"
for i in $(seq 1 "$n"); do
  wt="$repo/.plain/$i"
  git -C "$repo" worktree add -q -b "plain/$i" "$wt" main
  start=$(git -C "$wt" rev-parse HEAD)
  (cd "$wt" && ! test -f done.txt)          # red test
  (cd "$wt" && true)                        # the agent
  (cd "$wt" && test -f README.md)           # the test
  git -C "$wt" add -A
  git -C "$wt" -c user.name=b -c user.email=b@b commit -q --allow-empty -m work
  git -C "$wt" diff --name-only -z "$start" HEAD >/dev/null
  git -C "$wt" status --porcelain -z >/dev/null
done
"""


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, env=env)


def make_repo(root: Path, workers: int, agent: str, test: str) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    (repo / "README.md").write_text("bench\n")
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init", cwd=repo)
    (repo / ".boss").mkdir()
    (repo / ".boss/config.yaml").write_text(f"agents:\n  bench:\n    command: {agent!r}\n")
    lines = ["# Bench", "Benchmark plan.", "", "- integration test: true", ""]
    for i in range(1, workers + 1):
        lines += [f"## W{i}: worker {i}", f"- scope: ^out/W{i}/", "- agent: bench", f"- test: {test}",
                  "- max_iterations: 1", "- max_strategies: 1", "", "Bench.", ""]  # fmt: skip
    (root / "plan.md").write_text("\n".join(lines))
    sh(sys.executable, "-m", "boss", "plan", "--from", str(root / "plan.md"), cwd=repo)
    return repo


def run_plan(repo: Path, jobs: int) -> float:
    script = next((repo / ".boss/plans").glob("*/run_workers.sh"))
    start = time.perf_counter()
    subprocess.run(["bash", str(script), "-j", str(jobs)], cwd=repo, check=True, capture_output=True)
    return time.perf_counter() - start


def efficiency(workers: int, jobs: int, sleep: float, rounds: int) -> None:
    agent = f'sleep {sleep}; mkdir -p "out/$BOSS_WORKER" && echo x > "out/$BOSS_WORKER/done"'
    test = "ls out/*/done >/dev/null 2>&1"
    ones, manys = [], []
    for _ in range(rounds):  # best of several rounds for both, so load from elsewhere matters less
        with tempfile.TemporaryDirectory() as d:
            ones.append(run_plan(make_repo(Path(d) / "one", 1, agent, test), 1))
        with tempfile.TemporaryDirectory() as d:
            manys.append(run_plan(make_repo(Path(d) / "many", workers, agent, test), jobs))
    one, many = min(ones), min(manys)
    print(
        f"parallel: {workers} workers, -j {jobs}, agent sleeps {sleep}s, {os.cpu_count()} CPUs, best of {rounds}"
    )
    print(f"  one worker alone (ideal wall time): {one:.2f}s")
    print(f"  {workers} workers measured:            {many:.2f}s")
    print(f"  parallel efficiency (ideal/measured): {one / many:.2f}   (bar: >= 0.90)")
    print(f"  against the agent time alone ({sleep}s): {sleep / many:.2f}")


def overhead(repeat: int) -> None:
    worker_times, plain_times = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            repo = make_repo(Path(d), 1, "mkdir -p out/W1 && echo x > out/W1/done", "test -f out/W1/done")
            start = time.perf_counter()
            sh(sys.executable, "-m", "worker", "run", "bench", "W1", cwd=repo)
            worker_times.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as d:
            repo = make_repo(Path(d), 1, "true", "true")
            start = time.perf_counter()
            sh("bash", "-c", PLAIN, "plain", str(repo), "1")
            plain_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(repeat):
        sh(sys.executable, "-c", "pass")
    interp = (time.perf_counter() - start) / repeat
    w, p = statistics.median(worker_times), statistics.median(plain_times)
    print(f"overhead: one iteration, agent and test doing nothing (median of {repeat})")
    print(
        f"  worker run:                  {w * 1000:.0f} ms  (python start-up alone: {interp * 1000:.0f} ms)"
    )
    print(f"  plain git in a shell script: {p * 1000:.0f} ms")
    print(f"  ratio worker/plain:          {w / p:.2f}")


def _run_once(workdir: Path, jail: object, network: bool) -> float:
    from boss.core.proc import run_group
    from boss.core.sandbox import Sandbox

    assert isinstance(jail, Sandbox)
    start = time.perf_counter()
    with jail.confine(workdir, writable=[workdir], network=network) as confine:
        run_group(
            ["true"], cwd=workdir, env=os.environ, log_path=workdir.parent / "bench.log", confine=confine
        )
    return time.perf_counter() - start


def sandbox_cost(repeat: int) -> None:
    from boss.core import sandbox

    jail = sandbox.resolve("auto")
    if not jail.active:
        print(f"sandbox: {jail.describe()}; nothing to measure")
        return
    off = sandbox.Sandbox("off", why_none="bench")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        work = Path(d) / "wt"
        work.mkdir()
        for name, network in (("agent run (host network)", True), ("test run (loopback only)", False)):
            inside = statistics.median(_run_once(work, jail, network) for _ in range(repeat * 4))
            outside = statistics.median(_run_once(work, off, network) for _ in range(repeat * 4))
            rows.append((name, inside, outside))
    whole = {}
    for mode in ("off", "auto"):
        times = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as d:
                repo = make_repo(Path(d), 1, "mkdir -p out/W1 && echo x > out/W1/done", "test -f out/W1/done")
                start = time.perf_counter()
                sh(
                    sys.executable,
                    "-m",
                    "worker",
                    "run",
                    "bench",
                    "W1",
                    cwd=repo,
                    env={**os.environ, "BOSS_SANDBOX": mode},
                )
                times.append(time.perf_counter() - start)
        whole[mode] = statistics.median(times)
    print(f"sandbox: {jail.describe()}, median of {repeat * 4} runs (whole worker: {repeat})")
    for name, inside, outside in rows:
        added = (inside - outside) * 1000
        print(
            f"  {name}: {inside * 1000:.1f} ms sandboxed, {outside * 1000:.1f} ms not: +{added:.1f} ms  (bar: < 50 ms)"
        )
    added = (whole["auto"] - whole["off"]) * 1000
    print(
        f"  worker run, red + agent + green: {whole['auto'] * 1000:.0f} ms sandboxed, {whole['off'] * 1000:.0f} ms not: +{added:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only-sandbox", action="store_true", help="measure the sandbox's cost only")
    args = parser.parse_args()
    if shutil.which("git") is None:
        print("git is required", file=sys.stderr)
        return 2
    env_vars = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
                "GIT_COMMITTER_EMAIL": "b@b"}  # fmt: skip
    os.environ.update(env_vars)
    if not args.only_sandbox:
        efficiency(args.workers, args.jobs, args.sleep, args.rounds)
        overhead(args.repeat)
    sandbox_cost(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
