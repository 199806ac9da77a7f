#!/usr/bin/env python3
"""Benchmark the Dask engine (run_workers.sh --engine dask) on a cluster on loopback.

1. Scaling: N workers whose scripted agent sleeps S seconds, on one node of 2 AGENT slots
   against three nodes of 2 slots each (a scheduler and `dask worker` processes on 127.0.0.1,
   each with its own local folder, a bare repository as the shared remote). Bar: three nodes
   at least 2.5x faster: the median of --rounds rounds, each one node then three (a slower
   spell of this machine weighs on both sides of a round). Measured twice:
   - the nodes sharing this machine's CPUs, as they are started;
   - each node held to its own share of a CPU (a cgroup's CPU quota on the node's process and
     everything it starts: --node-cpus, by default a quarter of this machine's CPUs), standing
     for a machine of its own. It favours the ratio: held to its share, the one node is
     CPU-bound too, so the engine's costs weigh less. On one machine, three nodes sharing its
     CPUs are slowed by each other's work as well as by the engine's. It needs root and a
     cgroup CPU controller; without them it says so and is skipped.
2. The engine's cost per worker: one worker whose agent does nothing, run here
   (run_workers.sh) against the same run on a one-node cluster, each repeated; the difference
   is what the engine adds to a worker (publishing refs, the node's mirror fetch and workspace,
   the push, the Boss's fetch and records).
3. The ceremony (`boss merge --engine dask`): N branches (one breaking the suite) whose
   integration test sleeps S seconds, merged serially here (`--slots 1`), with 6 slots here, and
   with 6 slots on three nodes of 2 threads; the same verdicts and tree from all three, and what
   the cluster's slots cost against local ones.

Usage: python scripts/bench_dask.py [--workers 24] [--sleep 2] [--rounds 3] [--repeat 3] [--node-cpus F]
                                    [--only scaling,overhead,ceremony]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

DASK = str(Path(sys.executable).parent / "dask")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_plan(root: Path, workers: int, sleep: float) -> tuple[Path, Path]:
    """A repository with a plan of independent scripted workers, and its bare remote."""
    from boss.core import manifest as mf
    from boss.core.config import load_config
    from boss.core.paths import PlanPaths
    from boss.plan.render import render_plan

    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "src").mkdir()
    (repo / "src" / "keep.txt").write_text("k\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    entries = []
    for n in range(1, workers + 1):
        steps = [{"sleep": sleep, "write": {f"src/w{n}.txt": str(n)}}]
        body = "Do the work.\n\n```agent-script\n" + json.dumps(steps) + "\n```\n"
        entries.append({"id": f"W{n}", "title": f"Work {n}", "scope": ["^src/"], "test": f"test -f src/w{n}.txt",
                        "instructions": body})  # fmt: skip
    raw = {"version": 1, "plan": "p", "base": "main", "base_commit": git(repo, "rev-parse", "HEAD"),
           "defaults": {"agent": "scripted", "max_iterations": 1, "max_strategies": 1}, "workers": entries}  # fmt: skip
    paths = PlanPaths.of(repo, "p")
    m = mf.from_dict(raw, "manifest.yaml")
    mf.save(m, paths.manifest)
    render_plan(paths, m, load_config(repo), force=True)
    remote = root / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(remote)], check=True)
    return repo, remote


class CpuShare:
    """A cgroup holding its processes (and all they start) to `cpus` CPUs: cgroup v2's cpu.max,
    or v1's cpu.cfs_quota_us. None from make() when neither can be made here (not root, no
    CPU controller)."""

    PERIOD = 100_000  # microseconds

    def __init__(self, folder: Path, procs_file: Path) -> None:
        self.folder, self.procs_file = folder, procs_file

    @classmethod
    def make(cls, name: str, cpus: float) -> CpuShare | None:
        quota = str(max(1000, int(cpus * cls.PERIOD)))
        v2 = Path("/sys/fs/cgroup")
        try:
            if "cpu" in (v2 / "cgroup.controllers").read_text().split():
                # The root's subtree_control keeps +cpu afterwards (what systemd also does).
                (v2 / "cgroup.subtree_control").write_text("+cpu")
                folder = v2 / name
                folder.mkdir()
                try:
                    (folder / "cpu.max").write_text(f"{quota} {cls.PERIOD}")
                except OSError:
                    folder.rmdir()
                    raise
                return cls(folder, folder / "cgroup.procs")
        except OSError:
            pass
        v1 = Path("/sys/fs/cgroup/cpu")
        try:
            folder = v1 / name
            folder.mkdir()
            (folder / "cpu.cfs_period_us").write_text(str(cls.PERIOD))
            (folder / "cpu.cfs_quota_us").write_text(quota)
            return cls(folder, folder / "cgroup.procs")
        except OSError:
            with contextlib.suppress(OSError):
                (v1 / name).rmdir()
            return None

    def hold(self, pid: int) -> None:
        self.procs_file.write_text(str(pid))

    def remove(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                self.folder.rmdir()
                return
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.1)


class Cluster:
    def __init__(self, root: Path, nodes: int, slots: int = 2, cpus: float = 0.0) -> None:
        """A scheduler and `nodes` dask workers; with cpus, each node held to that many CPUs."""
        root.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.shares: list[CpuShare] = []
        info = root / "scheduler.json"
        self._spawn(root / "scheduler.log", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                             "--no-dashboard", "--scheduler-file", str(info)])  # fmt: skip
        deadline = time.monotonic() + 60
        while not (info.is_file() and info.read_text().strip()):
            if time.monotonic() > deadline:
                raise SystemExit("the scheduler did not start: " + (root / "scheduler.log").read_text())
            time.sleep(0.1)
        self.address = json.loads(info.read_text())["address"]
        try:
            self._nodes(root, nodes, slots, cpus)
        except BaseException:
            self.stop()
            raise

    def _nodes(self, root: Path, nodes: int, slots: int, cpus: float) -> None:
        for n in range(nodes):
            local = root / f"node{n}"
            local.mkdir()
            share = CpuShare.make(f"bench-dask-{os.getpid()}-{uuid.uuid4().hex[:8]}", cpus) if cpus else None
            if cpus and share is None:
                raise NoCpuShare
            if share is not None:
                self.shares.append(share)  # removed by stop(), whatever fails next
            self._spawn(root / f"node{n}.log", [DASK, "worker", self.address, "--name", f"node{n}", "--host",
                        "127.0.0.1", "--nthreads", str(slots), "--no-nanny", "--resources", f"AGENT={slots}",
                        "--local-directory", str(local), "--dashboard-address", "127.0.0.1:0"])  # fmt: skip
            if share is not None:
                share.hold(self.procs[-1].pid)
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(nodes, timeout=120)

    def _spawn(self, log: Path, args: list[str]) -> None:
        out = log.open("w")
        self.procs.append(
            subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def stop(self) -> None:
        for p in reversed(self.procs):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        for share in self.shares:
            share.remove()


class NoCpuShare(Exception):
    """No cgroup CPU quota can be made here."""


def run(repo: Path, *args: str) -> float:
    started = time.monotonic()
    res = subprocess.run(["bash", str(repo / ".boss/plans/p/run_workers.sh"), *args], cwd=repo,
                         capture_output=True, text=True)  # fmt: skip
    took = time.monotonic() - started
    if res.returncode != 0:
        raise SystemExit(
            f"run_workers.sh {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    return took


def scaling(root: Path, workers: int, sleep: float, node_cpus: float, rounds: int) -> None:
    cpus = os.cpu_count() or 1
    cases = (("the nodes sharing this machine's CPUs", 0.0),
             (f"each node held to {node_cpus:g} CPU (a machine of its own)", node_cpus))  # fmt: skip
    for label, share in cases:
        ratios = []
        try:
            for n in range(1, rounds + 1):  # one node, then three, each round: a slower spell of the
                times = {}  # machine weighs on both sides of a round's ratio
                for nodes in (1, 3):
                    where = root / f"{'own' if share else 'shared'}-{n}-{nodes}"
                    cluster = Cluster(where / "cluster", nodes, cpus=share)
                    try:
                        repo, remote = make_plan(where / "plan", workers, sleep)
                        engine = ("--engine", "dask", "--scheduler", cluster.address, "--remote", str(remote))
                        times[nodes] = run(repo, "-j", str(workers), *engine)
                    finally:
                        cluster.stop()
                        shutil.rmtree(where, ignore_errors=True)
                ratios.append(times[1] / times[3])
                print(f"{label}, round {n}: {workers} workers (agent sleeps {sleep:g} s), one node of 2 slots "
                      f"{times[1]:.1f} s, three nodes {times[3]:.1f} s: {ratios[-1]:.2f}x")  # fmt: skip
        except NoCpuShare:
            print(f"{label}: not measured (a cgroup CPU quota needs root and a cgroup CPU controller)")
            continue
        ratio = statistics.median(ratios)
        verdict = "PASS" if ratio >= 2.5 else "FAIL"
        print(f"{label}: three nodes against one: {ratio:.2f}x, the median of {rounds} round(s) "
              f"({min(ratios):.2f}x-{max(ratios):.2f}x) (bar: at least 2.5x) {verdict}")  # fmt: skip
    print(f"(this machine has {cpus} CPU(s); the bar is about three machines against one)")


def overhead(root: Path, repeat: int) -> None:
    cluster = Cluster(root / "cluster-overhead", 1)
    local, on_cluster = [], []
    try:
        for n in range(repeat):
            repo, _ = make_plan(root / f"local{n}", 1, 0)
            local.append(run(repo))
            repo, remote = make_plan(root / f"dask{n}", 1, 0)
            on_cluster.append(
                run(repo, "--engine", "dask", "--scheduler", cluster.address, "--remote", str(remote))
            )
    finally:
        cluster.stop()
    here, there = statistics.median(local), statistics.median(on_cluster)
    print(f"one worker, run here: {here:.2f} s; on a one-node cluster: {there:.2f} s (medians of {repeat})")
    print(f"the engine adds {there - here:.2f} s per worker run")


def ceremony(root: Path, n: int, seconds: float, slots: int = 6) -> None:
    """bench_merge.py's plan, merged with --slots 1 and --slots S here and --slots S on the cluster."""
    from bench_merge import build  # scripts/ is this script's own folder

    bad = f"W{n // 2 + 1:02d}"
    test = f"sleep {seconds:g} && test -f src/ok.txt"
    template, _ = build(root / "merge-template", n, test, bad)
    cluster = Cluster(root / "cluster-merge", 3)
    results = {}
    try:
        for kind, args in (("serial here", ["--slots", "1"]), (f"{slots} slots here", ["--slots", str(slots)]),
                           (f"{slots} slots on 3 nodes", ["--slots", str(slots), "--engine", "dask",
                                                          "--scheduler", cluster.address])):  # fmt: skip
            copy = root / f"merge-{len(results)}"
            shutil.copytree(template.parent, copy, symlinks=True)
            repo = copy / "repo"
            if "--engine" in args:
                remote = copy / "remote.git"
                subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(remote)], check=True)
                args += ["--remote", str(remote)]
            started = time.monotonic()
            res = subprocess.run([sys.executable, "-m", "boss", "merge", "bench", *args], cwd=repo,
                                 capture_output=True, text=True)  # fmt: skip
            took = time.monotonic() - started
            report = json.loads((repo / ".boss/plans/bench/merge/report.json").read_text())
            if res.returncode != 1:
                raise SystemExit(f"boss merge {' '.join(args)} failed ({res.returncode}):\n{res.stderr}")
            verdicts = {w["id"]: w["verdict"] for w in report["workers"]}
            results[kind] = (took, verdicts, git(repo, "rev-parse", "main^{tree}"), report["rounds"])
            print(
                f"boss merge, {n} branches, a {seconds:g} s suite, {kind}: {took:.1f} s, {report['rounds']} rounds"
            )
    finally:
        cluster.stop()
    answers = {(str(v), t) for _, v, t, _ in results.values()}
    if len(answers) != 1:
        raise SystemExit(f"the ceremonies disagree: {results}")
    serial, here, there = (r[0] for r in results.values())
    print(f"the same verdicts and tree from all three; on the cluster {serial / there:.2f}x the serial "
          f"ceremony, {there / here:.2f}x the time of {slots} slots here")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=24)
    ap.add_argument("--sleep", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side of the per-worker cost")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the scaling bar (one node, three nodes)")
    ap.add_argument(
        "--node-cpus", type=float, default=0.0, help="each node's CPU share (default: a quarter of the CPUs)"
    )
    ap.add_argument("--branches", type=int, default=8, help="the ceremony's branches")
    ap.add_argument("--only", default="scaling,overhead,ceremony", help="which parts, comma-separated")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    root = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    home = root / "home"
    home.mkdir()
    (home / "gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[user]\n\tname = Bench\n\temail = b@example.com\n"
    )
    os.environ.update(GIT_CONFIG_GLOBAL=str(home / "gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    try:
        if "scaling" in parts:
            scaling(root, args.workers, args.sleep, args.node_cpus or (os.cpu_count() or 1) / 4, args.rounds)
        if "overhead" in parts:
            overhead(root, args.repeat)
        if "ceremony" in parts:
            ceremony(root, args.branches, args.sleep)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
