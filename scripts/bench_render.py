"""Benchmark `boss plan --from` + render of a 200-worker plan, and `boss --help` start-up.

    python scripts/bench_render.py [--workers 200] [--repeat 5] [--check]

Prints (1) planning and rendering N workers in-process (Markdown parsed, manifest validated,
saved, run_workers.sh + plan.md + N CONTEXT.md rendered) next to a baseline that writes the
same files' contents with plain Python, as a ratio; (2) the same at N/2 and 2N, to show the
growth is linear, not quadratic; (3) `python -m boss --help` start-up next to `python -c pass`.
The bar: 200 workers in well under a second. --check exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from boss.core.config import Config
from boss.core.manifest import from_dict
from boss.plan import markdown_plan
from boss.plan.new_plan import complete, find_base, write_plan


def markdown(n: int) -> str:
    """A plan of n workers in groups of ten; each group after the first waits for the last."""
    lines = ["# Bench plan", "Change every module.", "", "- integration test: python -m pytest -q", ""]
    for i in range(1, n + 1):
        lines += [f"## W{i}: Module {i} gets typed", f"- scope: ^src/m{i}/, ^tests/m{i}/"]
        if i > 10:
            lines.append(f"- depends on: W{(i - 1) // 10 * 10}")
        lines += [f"- test: python -m pytest tests/m{i} -q", "", f"Add type hints to src/m{i}/.", ""]
    return "\n".join(lines)


def make_repo(root: Path, n: int) -> Path:
    repo = root / "repo"
    for i in range(1, n + 1):
        (repo / f"src/m{i}").mkdir(parents=True)
        (repo / f"src/m{i}/__init__.py").write_text("")
    (repo / "plan.md").write_text(markdown(n))
    env = {
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env={**env, "PATH": "/usr/bin:/bin"})
    return repo


def plan_and_render(repo: Path) -> list[Path]:
    """What `boss plan --from plan.md --force` does, in-process; the files it wrote."""
    raw = markdown_plan.parse((repo / "plan.md").read_text(), "plan.md")
    base = find_base(repo, None)
    m = from_dict(complete(raw, base), "plan.md")
    paths, result = write_plan(m, base, Config(), force=True)
    return [paths.manifest, *result.written, *result.unchanged]


def baseline(files: dict[Path, str], out: Path) -> None:
    """The floor: the same contents written with plain Python, nothing computed."""
    for path, text in files.items():
        target = out / path.name if path.name != "CONTEXT.md" else out / path.parent.name / "CONTEXT.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_workers(n: int, repeat: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="boss-bench-") as tmp:
        root = Path(tmp)
        repo = make_repo(root, n)
        plans = repo / ".boss" / "plans"

        def run() -> None:
            shutil.rmtree(plans, ignore_errors=True)
            plan_and_render(repo)

        boss_time = timed(run, repeat)
        written = plan_and_render(repo)
        files = {p: p.read_text() for p in written}
        assert len(files) == n + 3, len(files)

        def floor() -> None:
            out = root / "baseline"
            shutil.rmtree(out, ignore_errors=True)
            baseline(files, out)

        return boss_time, timed(floor, repeat)


def startup(argv: list[str], repeat: int) -> float | None:
    """Median wall time of a command; None (and why) when it fails."""

    def run() -> None:
        subprocess.run(argv, check=True, capture_output=True, text=True)

    try:
        run()  # warm the file cache
    except subprocess.CalledProcessError as e:
        print(f"{' '.join(argv[1:])} failed (exit {e.returncode}): {e.stderr.strip()[:300]}")
        return None
    return timed(run, repeat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar is missed")
    args = parser.parse_args()
    n = args.workers
    results = {k: bench_workers(k, args.repeat) for k in (n // 2, n, n * 2)}
    boss_time, floor_time = results[n]
    print(f"plan + render, {n} workers: {boss_time * 1000:7.1f} ms  (bar: well under 1000 ms)")
    print(f"baseline, same {n + 3} files written with plain Python: {floor_time * 1000:7.1f} ms")
    print(f"ratio boss / baseline: {boss_time / floor_time:5.1f}x")
    growth = results[n * 2][0] / results[n // 2][0]
    for k, (t, _) in sorted(results.items()):
        print(f"  {k:4d} workers: {t * 1000:7.1f} ms")
    print(f"growth from {n // 2} to {n * 2} workers (4x): {growth:4.1f}x  (linear: ~4x, quadratic: ~16x)")
    pass_time = startup([sys.executable, "-c", "pass"], 7) or 0.0
    print(f"python -c pass: {pass_time * 1000:6.1f} ms")
    ok = boss_time < 1.0 and growth < 8
    for argv in (["--help"], ["plan", "--help"]):
        took = startup([sys.executable, "-m", "boss", *argv], 7)
        if took is None:
            ok = False
            continue
        print(f"python -m boss {' '.join(argv)}: {took * 1000:6.1f} ms (+{(took - pass_time) * 1000:.1f} ms)")
    print("bars met" if ok else "BAR MISSED")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
