"""Benchmark: `boss merge` against a plain shell script doing the same merges and test runs.

N worker branches each add one file; the integration test is trivial (`true`), so what is
measured is the ceremony's own overhead (triage, verification from git, journal, state log,
reports) on top of the work any script must do: one worktree, a baseline test run, and per
branch one `git merge --no-ff`, one run of the branch's acceptance test (`true` here) and one
integration test run, then moving main. (boss also runs the merged workers' acceptance tests
once more on the final tree, in one run: its own cost, counted in the ratio.) Both run in the same
process, on copies of the same repository, in --repeat rounds of one run each. The ratio that
counts is the median of the rounds' ratios: a round's two runs see the same load on a busy machine.

    python scripts/bench_merge.py [--n 50] [--repeat 5] [--test true]

Prints both wall times, their ratio (bar: at most 1.3) and the integration test runs of each.

With --speculative, the parallel ceremony against the serial one: N worker branches (default 8),
one of which (the middle one) breaks the suite by removing src/ok.txt, and an integration test
that takes T seconds, `sleep T && test -f src/ok.txt`. `boss merge --slots 1` and
`boss merge --slots S` (default 9) run on copies of the same repository, and the plain shell
script (which, as the ceremony, runs a red test once more before it drops a merge) on a third:

    python scripts/bench_merge.py --speculative [--n 8] [--seconds 2] [--slots 9] [--repeat 1]

Prints each wall time, the speed-up of S slots over one, the rounds (sequential batches of test
runs; bar: 2 at N=8 with 9 slots, where serial needs one per run) and the test runs of each (from
report.json), checks that both gave the same verdicts and main's tree, and the overhead of
`--slots 1` against the shell script (bar: at most 1.1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BAR = 1.3
SERIAL_BAR = 1.1  # --speculative: `--slots 1` against the shell script doing the same serial work
ROUNDS_BAR = 2  # --speculative: rounds with N+1 slots and one breaking branch
ACCEPTANCE = "true"  # every worker's acceptance test, which the ceremony runs after its merge
SHELL = r"""set -euo pipefail
repo=$1; test_cmd=$2; accept_cmd=$3; shift 3
wt="$repo/.worktrees/shell-integration"
start=$(git -C "$repo" rev-parse main)
git -C "$repo" worktree add -q -b shell/integration "$wt" main
cd "$wt"
runs=0
bash -c "$test_cmd" > baseline.log 2>&1 && runs=$((runs + 1))
for branch in "$@"; do
  pre=$(git rev-parse HEAD)
  if git merge -q --no-ff --no-edit -m "merge $branch" "$branch" > /dev/null 2>&1; then
    if bash -c "$accept_cmd" > accept.log 2>&1; then
      runs=$((runs + 1))
      if ! bash -c "$test_cmd" > "test.log" 2>&1; then
        runs=$((runs + 1))  # a red run is made once more before the merge is dropped, as boss does
        bash -c "$test_cmd" > "test.log" 2>&1 || git reset -q --hard "$pre"
      fi
    else
      git reset -q --hard "$pre"
    fi
  else
    git merge --abort
  fi
done
git -C "$repo" update-ref refs/heads/main "$(git rev-parse HEAD)" "$start"
echo "$runs"
"""


def git(repo: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
    ).stdout.strip()


def build(root: Path, n: int, test: str, bad: str = "") -> tuple[Path, list[str]]:
    """A repository with a plan of n successful workers, each adding one file on its branch; the
    worker named bad also removes src/ok.txt (which the --speculative suite checks)."""
    from boss.core import manifest as mf
    from boss.core import status as st
    from boss.core.paths import PlanPaths

    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for i in range(20):
        (repo / "lib").mkdir(exist_ok=True)
        (repo / "lib" / f"module{i}.py").write_text(f"VALUE = {i}\n")
    (repo / "src").mkdir()
    (repo / "src" / "ok.txt").write_text("the suite checks this file\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    workers = [
        {"id": f"W{i:02d}", "title": f"Feature {i}", "scope": ["^src/"], "test": ACCEPTANCE}
        for i in range(1, n + 1)
    ]
    m = mf.from_dict(
        {"version": 1, "plan": "bench", "base": "main", "base_commit": base, "integration_test": test,
         "workers": workers},
        "bench manifest",
    )  # fmt: skip
    paths = PlanPaths.of(repo, "bench")
    mf.save(m, paths.manifest)
    branches = []
    index = root / "index"
    for w in m.workers:
        blob = git(repo, "hash-object", "-w", "--stdin", stdin=f"feature {w.id}\n")
        env = {"GIT_INDEX_FILE": str(index)}
        git(repo, "read-tree", base, env=env)
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},src/{w.id}.txt", env=env)
        if w.id == bad:
            git(repo, "update-index", "--force-remove", "src/ok.txt", env=env)
        tree = git(repo, "write-tree", env=env)
        head = git(repo, "commit-tree", tree, "-p", base, "-m", w.title)
        git(repo, "update-ref", f"refs/heads/{w.branch}", head)
        status = st.Status(plan="bench", id=w.id, state=st.SUCCESS, branch=w.branch, start_commit=base,
                           head_commit=head, started_at=st.now_iso(), finished_at=st.now_iso())  # fmt: skip
        st.write(paths.status(w.id), status)
        branches.append(w.branch)
    return repo, branches


def run_boss(repo: Path, slots: int, ok: tuple[int, ...] = (0,)) -> tuple[float, dict[str, Any]]:
    """`boss merge bench --slots N` in repo: its wall time and its report.json."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "boss", "merge", "bench", "--slots", str(slots)],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    report = repo / ".boss/plans/bench/merge/report.json"
    if proc.returncode not in ok or not report.is_file():
        sys.exit(f"boss merge --slots {slots} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return elapsed, json.loads(report.read_text())


def time_boss(repo: Path) -> tuple[float, int, int]:
    elapsed, report = run_boss(repo, 1)
    merged = sum(1 for w in report["workers"] if w["verdict"] == "MERGED")
    return elapsed, int(report["test_runs"]), merged


def time_shell(repo: Path, test: str, branches: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run(
        ["bash", "-c", SHELL, "bench-shell", str(repo), test, ACCEPTANCE, *branches],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"the shell script failed (exit {proc.returncode}):\n{proc.stderr}")
    return elapsed, int(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=0, help="worker branches (default 50; --speculative: 8)")
    parser.add_argument(
        "--repeat", type=int, default=0, help="rounds, best taken (default 5; --speculative: 1)"
    )
    parser.add_argument("--test", default="true", help="the integration test command (default: true)")
    parser.add_argument("--speculative", action="store_true", help="--slots 1 against --slots S (see above)")
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="--speculative: the test's sleep (default 2)"
    )
    parser.add_argument(
        "--slots", type=int, default=9, help="--speculative: the slots to compare (default 9)"
    )
    args = parser.parse_args()
    if args.speculative:
        return speculative(args.n or 8, args.seconds, args.slots, args.repeat or 1)
    args.n, args.repeat = args.n or 50, args.repeat or 5
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        root = Path(tmp)
        template, branches = build(root / "template", args.n, args.test)
        boss_times, shell_times = [], []
        boss_runs = shell_runs = merged = 0
        for k in range(args.repeat):
            # alternate who goes first, so a burst of load elsewhere hurts both alike
            for kind in ("boss", "shell") if k % 2 == 0 else ("shell", "boss"):
                copy = root / f"{kind}{k}"
                shutil.copytree(template.parent, copy, symlinks=True)
                repo = copy / "repo"
                if kind == "boss":
                    elapsed, boss_runs, merged = time_boss(repo)
                    boss_times.append(elapsed)
                else:
                    elapsed, shell_runs = time_shell(repo, args.test, branches)
                    shell_times.append(elapsed)
                shutil.rmtree(copy)
    if merged != args.n:
        sys.exit(f"boss merge merged {merged} of {args.n} branches")
    best_boss, best_shell = min(boss_times), min(shell_times)
    ratio = best_boss / best_shell
    paired = statistics.median(b / s for b, s in zip(boss_times, shell_times, strict=True))
    print(f"branches:                  {args.n} (integration test: {args.test!r})")
    print(f"boss merge wall time:      {best_boss:.3f}s (runs: {', '.join(f'{t:.3f}' for t in boss_times)})")
    print(
        f"plain shell wall time:     {best_shell:.3f}s (runs: {', '.join(f'{t:.3f}' for t in shell_times)})"
    )
    verdict = "ok" if paired <= BAR else "OVER"
    print(f"ratio boss/shell:          {paired:.2f} median of {args.repeat} paired rounds, "
          f"{ratio:.2f} best against best (bar: at most {BAR}: {verdict})")  # fmt: skip
    print(f"integration test runs:     boss {boss_runs}, shell {shell_runs}")
    return 0


def speculative(n: int, seconds: float, slots: int, repeat: int) -> int:
    """--slots 1, --slots S and the shell script on copies of one repository, repeat times."""
    bad = f"W{n // 2 + 1:02d}" if n > 1 else "W01"
    test = f"sleep {seconds:g} && test -f src/ok.txt"
    # per kind, per round: (wall time, rounds, integration runs, runs made ahead, of those unused)
    rows: dict[str, list[tuple[float, int, int, int, int]]] = {"serial": [], "parallel": [], "shell": []}
    outcomes: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        root = Path(tmp)
        template, branches = build(root / "template", n, test, bad)
        for k in range(repeat):
            kinds = ["serial", "parallel", "shell"]
            for kind in kinds if k % 2 == 0 else kinds[::-1]:
                copy = root / f"{kind}{k}"
                shutil.copytree(template.parent, copy, symlinks=True)
                repo = copy / "repo"
                if kind == "shell":
                    elapsed, runs = time_shell(repo, test, branches)
                    rows[kind].append((elapsed, runs, runs, 0, 0))
                else:
                    elapsed, report = run_boss(repo, 1 if kind == "serial" else slots, ok=(1,))
                    verdicts = {w["id"]: w["verdict"] for w in report["workers"]}
                    outcomes.setdefault(kind, (verdicts, git(repo, "rev-parse", "main^{tree}")))
                    counts = (
                        report.get(x, 0) for x in ("rounds", "test_runs", "speculative_runs", "wasted_runs")
                    )
                    rows[kind].append((elapsed, *(int(x) for x in counts)))  # type: ignore[arg-type]
                shutil.rmtree(copy)
    verdicts, _ = outcomes["serial"]  # type: ignore[misc]
    if outcomes["serial"] != outcomes["parallel"]:
        sys.exit(f"--slots {slots} gave another answer than --slots 1: {outcomes}")
    if [w for w, v in verdicts.items() if v != "MERGED"] != [bad]:
        sys.exit(f"expected only {bad} dropped, got {verdicts}")
    best = {kind: min(rows[kind]) for kind in rows}
    serial, parallel, shell = best["serial"], best["parallel"], best["shell"]
    over = statistics.median(a[0] / b[0] for a, b in zip(rows["serial"], rows["shell"], strict=True))

    def times(kind: str) -> str:
        return ", ".join(f"{r[0]:.2f}" for r in rows[kind])

    print(f"branches:                  {n}, {bad} breaks the suite (integration test: {test!r})")
    print(f"boss merge --slots 1:      {serial[0]:.2f}s, {serial[1]} rounds, {serial[2]} test runs "
          f"(runs: {times('serial')})")  # fmt: skip
    print(f"boss merge --slots {slots}:{' ' * (7 - len(str(slots)))}{parallel[0]:.2f}s, {parallel[1]} rounds, "
          f"{parallel[2]} test runs, {parallel[3]} made ahead, {parallel[4]} of them unused "
          f"(runs: {times('parallel')})")  # fmt: skip
    verdict = "ok" if parallel[1] <= ROUNDS_BAR else "OVER"
    print(f"speed-up:                  {serial[0] / parallel[0]:.2f}x (--slots 1 / --slots {slots}); rounds "
          f"{parallel[1]} against {serial[1]} (bar with {n + 1}+ slots: {ROUNDS_BAR}: {verdict})")  # fmt: skip
    print(f"plain shell wall time:     {shell[0]:.2f}s, {shell[2]} test runs (runs: {times('shell')})")
    verdict = "ok" if over <= SERIAL_BAR else "OVER"
    print(f"ratio --slots 1/shell:     {over:.2f} median of {repeat} paired rounds (bar: at most {SERIAL_BAR}: "
          f"{verdict})")  # fmt: skip
    print("same verdicts and main's tree with both: yes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
