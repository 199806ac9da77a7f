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

BAR = 1.3
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
      bash -c "$test_cmd" > "test.log" 2>&1 || git reset -q --hard "$pre"
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


def build(root: Path, n: int, test: str) -> tuple[Path, list[str]]:
    """A repository with a plan of n successful workers, each adding one file on its branch."""
    from boss.core import manifest as mf
    from boss.core import status as st
    from boss.core.paths import PlanPaths

    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for i in range(20):
        (repo / "lib").mkdir(exist_ok=True)
        (repo / "lib" / f"module{i}.py").write_text(f"VALUE = {i}\n")
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
        tree = git(repo, "write-tree", env=env)
        head = git(repo, "commit-tree", tree, "-p", base, "-m", w.title)
        git(repo, "update-ref", f"refs/heads/{w.branch}", head)
        status = st.Status(plan="bench", id=w.id, state=st.SUCCESS, branch=w.branch, start_commit=base,
                           head_commit=head, started_at=st.now_iso(), finished_at=st.now_iso())  # fmt: skip
        st.write(paths.status(w.id), status)
        branches.append(w.branch)
    return repo, branches


def time_boss(repo: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "boss", "merge", "bench"], cwd=repo, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"boss merge failed (exit {proc.returncode}):\n{proc.stderr}")
    report = json.loads((repo / ".boss/plans/bench/merge/report.json").read_text())
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
    parser.add_argument("--n", type=int, default=50, help="worker branches (default 50)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds, best taken (default 5)")
    parser.add_argument("--test", default="true", help="the integration test command (default: true)")
    args = parser.parse_args()
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


if __name__ == "__main__":
    raise SystemExit(main())
