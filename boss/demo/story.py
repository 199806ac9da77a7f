"""`boss demo`: a sample repository and the whole pipeline, told as a story (issue 6).

It runs the real commands a user would (`boss plan`, `run_workers.sh`, `boss merge`,
`boss quarantine`), each as a subprocess, and checks that every outcome went as designed.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from boss.core import git
from boss.core.errors import InputError
from boss.demo.sample import EXPECTED, FILES, PY, plan_markdown

PLAN = "shop-features"
Say = Callable[[str], None]


@dataclass
class Story:
    """Where the demo runs, how it speaks, and what it found."""

    root: Path
    say: Say
    started: float = field(default_factory=time.monotonic)
    problems: list[str] = field(default_factory=list)

    def step(self, n: int, title: str) -> None:
        self.say(f"\n== Step {n}/6 · {title}  ({time.monotonic() - self.started:.0f}s)")

    def stopped(self) -> bool:
        """True (after saying why) when a step went wrong and the story cannot go on."""
        if not self.problems:
            return False
        self.say(f"\nThe demo stopped: it did not go as designed ({time.monotonic() - self.started:.0f}s):")
        for p in self.problems:
            self.say(f"   - {p}")
        self.say(f"Everything so far is in {self.root}; the state log is .boss/plans/{PLAN}/log.")
        return True

    def open(self, rel: str, why: str) -> None:
        self.say(f"   open {self.root / rel}\n        {why}")

    def run(self, argv: list[str], *, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        """Run a command in the sample repository, showing its output indented."""
        shown = shown_command(argv)
        self.say(f"   $ {shown}")
        proc = subprocess.Popen(
            argv, cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        lines = []
        for line in proc.stdout or ():
            lines.append(line)
            self.say("   | " + line.rstrip("\n"))
        code = proc.wait()
        if code not in expect:
            self.problems.append(f"`{shown}` exited {code}, expected {' or '.join(map(str, expect))}")
        return subprocess.CompletedProcess(argv, code, "".join(lines), "")

    def boss(self, *args: str, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "boss", *args], expect=expect)


def shown_command(argv: list[str]) -> str:
    """A command as a person would paste it: each word shell-quoted, boss by its own name."""
    if argv[:3] == [sys.executable, "-m", "boss"]:
        return shlex.join(["boss", *argv[3:]])
    return shlex.join(argv)


def prepare_dir(target: Path, force: bool) -> None:
    """Make sure the demo may use target: new, empty, or an earlier demo when --force."""
    if target.exists() and any(target.iterdir()):
        earlier = (target / ".boss" / "plans" / PLAN).is_dir()
        if not (force and earlier):
            hint = " (it holds an earlier demo: add --force to replace it)" if earlier else ""
            msg = f"{target}: exists and is not empty{hint}; name another folder: boss demo DIR"
            raise InputError(msg)
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)


def create_repo(root: Path) -> None:
    """Write the sample repository and make its first commit."""
    for rel, text in {**FILES, "PLAN.md": plan_markdown()}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git.git(root, "init", "-q", "-b", "main")
    if git.identity_env():
        # A fresh machine may have no git identity; the sample repository gets its own.
        git.git(root, "config", "user.name", "boss demo")
        git.git(root, "config", "user.email", "demo@boss.invalid")
    git.git(root, "add", "-A")
    git.git(root, "commit", "-q", "-m", "A tiny shop, its tests, and a plan")


def verdicts(root: Path) -> dict[str, str]:
    """The merge report's verdict per worker."""
    report = root / ".boss" / "plans" / PLAN / "merge" / "report.json"
    data = json.loads(report.read_text())
    entries = data["workers"] if isinstance(data, dict) else data
    return {e["id"]: e["verdict"] for e in entries}


def run_demo(target: Path, say: Say, force: bool = False) -> int:
    """Tell the whole story in target; 0 when every outcome went as designed."""
    prepare_dir(target, force)
    s = Story(target.resolve(), say)
    plan_dir = f".boss/plans/{PLAN}"
    say("boss demo: one repository, seven agents in parallel, one merge ceremony.")
    say("Every agent here is the built-in scripted agent, so each outcome happens on purpose.")

    s.step(1, "A sample repository")
    create_repo(s.root)
    say(f"   {s.root}: a Python package `shop` with a test suite (tests/) and one acceptance")
    say("   test per feature (acceptance/), each failing until its feature exists.")
    s.open("PLAN.md", "the plan a person wrote: seven workers in Markdown, one per outcome")

    s.step(2, "Plan: the Boss turns the Markdown into a manifest and process files")
    s.boss("plan", "--from", "PLAN.md")
    if s.stopped():
        return 1
    s.open(f"{plan_dir}/manifest.yaml", "the work manifest: the source of truth, editable by hand")
    s.open(f"{plan_dir}/plan.md", "waves, scopes, tests, the overlap warning for W5/W6, a Mermaid graph")
    s.open(f"{plan_dir}/workers/W1/CONTEXT.md", "what W1's agent reads: task, scope, test, rules")
    say("   The Boss touched no code: `git status` in the repository is still clean.")

    s.step(3, "Work: every worker in its own git worktree, under the gates")
    s.run(["bash", f"{plan_dir}/run_workers.sh", "-j", "4"], expect=(1,))
    if s.stopped():
        return 1
    s.boss("status", PLAN)
    s.open(f"{plan_dir}/log", "the state log: every agent run, test run, strategy shift, scope check")
    s.open(f"{plan_dir}/workers/W1/attempts/s1i2/prompt.md", "W1's second prompt, with its test's failure")
    s.open(f"{plan_dir}/workers/W3/BLOCKER_REPORT.md", "why W3 gave up after 2 strategies x 2 iterations")

    s.step(4, "Merge: in dependency order, the integration suite after every merge")
    s.boss("merge", PLAN, expect=(1,))
    if s.stopped():
        return 1
    s.open(f"{plan_dir}/merge/REPORT.md", "one verdict per worker with its evidence, and a timeline")

    s.step(5, "Review: W4 did good work but also edited README.md, outside its scope")
    s.boss("quarantine", "show", "W4", "--plan", PLAN)
    s.boss("quarantine", "salvage", "W4", "--plan", PLAN, "--reason", "the receipt code is fine; drop README")
    s.boss("merge", PLAN, expect=(0, 1))
    if s.stopped():
        return 1

    s.step(6, "The result")
    found = verdicts(s.root)
    expected = {**EXPECTED, "W4": "MERGED"}
    for wid, want in expected.items():
        got = found.get(wid, "missing")
        if got == want:
            say(f"   as designed: {wid} {got}")
        else:
            say(f"   !! not as designed: {wid} {got} (expected {want})")
            s.problems.append(f"{wid} ended {got}, expected {want}")
    suite = s.run([PY, "-m", "unittest", "discover", "-s", "tests", "-t", "."])
    if suite.returncode == 0:
        say("   main passes its test suite, with W1, W2, W4 and W5 landed; W6's conflict and W7's")
        say("   breakage were dropped, W3's blocker report waits for a person.")
    s.boss("approvals", PLAN)
    say("   W3 also asked to run `rm -rf shop/__pycache__` (TIER 3): that request waits for you too.")
    say("   See the whole story on one page, approve or deny it, retry W3, review and merge there:")
    say(f"   pip install 'boss-worker[ui]', then in {s.root}: boss ui")
    elapsed = time.monotonic() - s.started
    if s.stopped():
        return 1
    say(f"\nDone in {elapsed:.0f}s. Everything above is in {s.root}: rerun any step, or read")
    say("the README to use boss on your own repository with Claude Code, Codex, Aider, Gemini or OpenCode.")
    return 0
