#!/usr/bin/env python3
"""Benchmark `boss do`: one task from start to landed, against a plain shell script doing the same.

`boss do` with an agent that writes one file and a test that checks it (both instant, so only
the tool's own work is timed): the plan written and rendered, the worker (worktree, red gate,
agent, green gate, commit, scope check), then the ceremony (verification from git, the merge in
its integration worktree, the acceptance test on the merged tree, the compare-and-swap landing
with the checkout's files following). The baseline is a bash script doing the same git and test
work by hand: a worktree and branch, the red test, the agent, the green test, a commit, the
scope diff, a --no-ff merge in a second worktree, the test on the merged tree, update-ref with
the old value, and read-tree to bring the checkout along. Both run in the same process, on
fresh copies of the same repository, alternately; the medians and their ratio are printed,
with the overhead in milliseconds.

Usage: python scripts/bench_do.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AGENT = "echo done > out.txt"
TEST = "test -f out.txt"

PLAIN = r"""
set -euo pipefail
repo="$1"; cd "$repo"
start=$(git rev-parse main)
git worktree add -q -b plain/w1 .plain/w1 main
(cd .plain/w1 && ! test -f out.txt)                       # the red test
(cd .plain/w1 && echo done > out.txt)                     # the agent
(cd .plain/w1 && test -f out.txt)                         # the green test
git -C .plain/w1 add -A
git -C .plain/w1 -c user.name=b -c user.email=b@b commit -q -m work
git -C .plain/w1 diff --name-only -z "$start" HEAD >/dev/null   # the scope check
git worktree add -q --detach .plain/int main
git -C .plain/int -c user.name=b -c user.email=b@b merge -q --no-ff -m merge plain/w1
(cd .plain/int && test -f out.txt)                        # the test on the merged tree
new=$(git -C .plain/int rev-parse HEAD)
git update-ref refs/heads/main "$new" "$start"
git read-tree -m -u "$start" "$new"
"""


def sh(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    (repo / "README.md").write_text("bench\n")
    (repo / ".gitignore").write_text(".plain/\n")
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init", cwd=repo)
    (repo / ".boss").mkdir()
    (repo / ".boss/config.yaml").write_text(f"agents:\n  bench:\n    command: {AGENT!r}\n")
    return repo


def time_do(root: Path) -> float:
    repo = make_repo(root)
    start = time.perf_counter()
    sh(sys.executable, "-m", "boss", "do", "Write out.txt", "--test", TEST, "--agent", "bench", cwd=repo)
    took = time.perf_counter() - start
    assert (repo / "out.txt").is_file(), "boss do did not land"
    return took


def time_plain(root: Path) -> float:
    repo = make_repo(root)
    start = time.perf_counter()
    sh("bash", "-c", PLAIN, "plain", str(repo))
    took = time.perf_counter() - start
    assert (repo / "out.txt").is_file(), "the plain script did not land"
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    do_times, plain_times = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as d:
            do_times.append(time_do(Path(d)))
        with tempfile.TemporaryDirectory() as d:
            plain_times.append(time_plain(Path(d)))
    start = time.perf_counter()
    for _ in range(args.repeat):
        sh(sys.executable, "-c", "pass")
    interp = (time.perf_counter() - start) / args.repeat
    d, p = statistics.median(do_times), statistics.median(plain_times)
    print(f"boss do, from the task to landed, agent and test instant (median of {args.repeat})")
    print(
        f"  boss do:                     {d * 1000:.0f} ms  (python start-up alone: {interp * 1000:.0f} ms)"
    )
    print(f"  plain git in a shell script: {p * 1000:.0f} ms")
    print(f"  ratio do/plain:              {d / p:.2f}")
    print(f"  overhead:                    {(d - p) * 1000:.0f} ms per task")


if __name__ == "__main__":
    main()
