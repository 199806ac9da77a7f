"""The attack suite's harness: a real repository holding a small Python project, a plan whose
workers run HOSTILE command agents, and the real pipeline (`boss render`, `worker run` or
`run_workers.sh`, `boss merge`, `boss status`) through the installed commands.

Planted code proves whether it ran by appending a line to a *marker* file outside the
repository (`echo ran >> $MARKER`): a marker that does not exist means no planted code ran
with the power to write outside its sandbox. Each attack names its line, so a failing test
says which plant ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

PY = sys.executable
BIN = Path(PY).parent
PLAN = "p"
# The acceptance test as pytest: red on the base (the feature is missing, and the import fails
# inside the test), green once src/feature.py is written. For the gate's own attacks.
FEATURE_TEST = f"{PY} -m pytest -q -p no:cacheprovider tests/test_feature.py"
# The same check without pytest's start-up (a tenth of the time), for every other attack.
QUICK_TEST = f"{PY} -c 'from src.feature import double; assert double(21) == 42'"
# Green on the base and after any work: imports src/feature.py when there is one (an integration
# test or a setup that runs the agent's code).
IMPORT_FEATURE = (
    f'{PY} -c \'import importlib.util as u; u.find_spec("src.feature") and __import__("src.feature")\''
)
FILES = {
    "README.md": "# sample project\n",
    "src/__init__.py": "",
    "src/calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_feature.py": textwrap.dedent(
        """\
        def test_existing():
            from src.calc import add

            assert add(2, 3) == 5


        def test_double():
            from src.feature import double

            assert double(21) == 42
        """
    ),
}
# The honest half of a hostile agent: the work its test asks for, so that only the attack
# stands between the worker and SUCCESS.
HONEST = "printf 'def double(x):\\n    return 2 * x\\n' > src/feature.py\n"
# Bash: `evil_commit PATH TEXT` prints a new commit on top of HEAD that adds PATH (no checkout,
# no ref); it writes objects into the shared git directory.
EVIL_COMMIT = """
evil_commit() {
  local base blob tree
  base=$(git rev-parse HEAD)
  export GIT_INDEX_FILE="$(mktemp -u)"
  git read-tree "$base" && blob=$(printf '%s\\n' "$2" | git hash-object -w --stdin) &&
    git update-index --add --cacheinfo "100644,$blob,$1" && tree=$(git write-tree) &&
    git commit-tree "$tree" -p "$base" -m "$1"
  unset GIT_INDEX_FILE
}
"""


def need_sandbox() -> None:
    """Skip when bubblewrap is missing, unless CI said the sandbox is required (then fail)."""
    if shutil.which("bwrap") is None and not os.environ.get("BOSS_SANDBOX_REQUIRED"):
        pytest.skip("bubblewrap (bwrap) is not installed and BOSS_SANDBOX_REQUIRED is not set")


def git(repo: Path, *args: str, check: bool = True) -> str:
    """git in repo (the test's isolated config); stdout stripped."""
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=check, capture_output=True, text=True
    ).stdout.strip()


def digest(path: Path) -> str:
    """The bytes of a file (or what a symlink there points to, as text), hashed; '-' if absent."""
    if path.is_symlink():
        return "symlink:" + os.readlink(path)
    if not path.exists():
        return "-"
    if path.is_dir():
        return "dir:" + tree_digest(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> str:
    """Every path below root with its bytes (symlinks by target), hashed into one value."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in sorted(filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]):
            p = Path(dirpath, name)
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
    return h.hexdigest()


def alive(token: str) -> list[int]:
    """Live (not zombie) processes whose command line holds token."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@dataclass
class Worker:
    """One worker of the plan: its hostile agent is a bash script."""

    id: str
    script: str  # the agent: bash, run in the worktree with the BOSS_* environment
    scope: list[str] = field(default_factory=lambda: ["^src/"])
    test: str = QUICK_TEST
    depends_on: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Project:
    """A repository with a plan of hostile workers, driven through the installed commands."""

    root: Path  # the test's tmp_path: everything lives below it
    repo: Path
    marker: Path  # outside the repository: planted code appends a line here
    home: Path  # the test's $HOME (conftest's isolated stand-in)
    workers: list[Worker]
    plan: str = PLAN

    # -- the pipeline -------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The environment of every command: the test's, plus the marker's path."""
        return {**os.environ, "MARKER": str(self.marker), "HOME": str(self.home)}

    def run(
        self, argv: list[str], timeout: float = 60, check: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A command in the main checkout, as the user would type it."""
        proc = subprocess.run(
            argv, cwd=self.repo, capture_output=True, text=True, timeout=timeout, env=self.env()
        )
        if check is not None:
            assert proc.returncode == check, (argv, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def boss(self, *args: str, check: int | None = None) -> subprocess.CompletedProcess[str]:
        return self.run([str(BIN / "boss"), *args], check=check)

    def worker(self, *args: str, check: int | None = None) -> subprocess.CompletedProcess[str]:
        return self.run([str(BIN / "worker"), *args], check=check)

    def run_worker(self, wid: str) -> subprocess.CompletedProcess[str]:
        """`worker run PLAN ID`: one worker to its end."""
        return self.worker("run", self.plan, wid)

    def run_workers(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The rendered run_workers.sh, as the user runs it."""
        return self.run(["bash", str(self.plan_dir / "run_workers.sh"), *args], timeout=90)

    def merge(self) -> subprocess.CompletedProcess[str]:
        """`boss merge PLAN`: the ceremony."""
        return self.boss("merge", self.plan)

    # -- what the pipeline left -----------------------------------------------------------
    @property
    def plan_dir(self) -> Path:
        return self.repo / ".boss" / "plans" / self.plan

    @property
    def git_dir(self) -> Path:
        return self.repo / ".git"

    def worktree(self, wid: str) -> Path:
        return self.repo / ".worktrees" / self.plan / wid

    def state(self, wid: str) -> dict[str, Any]:
        """The worker's status file, read by its one reader (boss.core.status); {} when none."""
        from dataclasses import asdict

        from boss.core import status as st

        found = st.read(self.plan_dir / "workers" / wid / "status.json")
        return asdict(found) if found is not None else {}

    def shown(self, wid: str) -> dict[str, Any]:
        """The worker's row as `boss status --json` shows it to the user."""
        out = self.boss("status", self.plan, "--json", check=0).stdout
        data = json.loads(out)
        rows = data["workers"] if isinstance(data, dict) else data
        return next(r for r in rows if r["id"] == wid)

    def verdicts(self) -> dict[str, str]:
        """Each worker's verdict in merge/report.json ({} when the ceremony wrote none)."""
        report = self.plan_dir / "merge" / "report.json"
        if not report.is_file():
            return {}
        return {w["id"]: w["verdict"] for w in json.loads(report.read_text())["workers"]}

    def agent_output(self, wid: str) -> str:
        """What the worker's agent printed, every run of it."""
        logs = sorted((self.plan_dir / "workers" / wid / "attempts").glob("*/agent.log"))
        return "".join(p.read_text(errors="replace") for p in logs)

    def ran(self) -> list[str]:
        """The marker's lines: which planted code ran outside containment ([] when none)."""
        return self.marker.read_text().split() if self.marker.exists() else []

    def main(self) -> str:
        return git(self.repo, "rev-parse", "refs/heads/main")

    def main_files(self) -> list[str]:
        return git(self.repo, "ls-tree", "-r", "--name-only", "-z", "main").split("\0")


def make_project(
    tmp_path: Path,
    workers: list[Worker],
    *,
    sandbox: str,
    files: dict[str, str] | None = None,
    integration_test: str = "",
    setup: str = "",
) -> Project:
    """A repository on main with the sample project, a config whose agents are the workers'
    scripts, a manifest, and `boss render` done. sandbox: the project setting (required|off)."""
    if sandbox == "required":
        need_sandbox()
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for rel, text in {**FILES, **(files or {})}.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    home = Path(os.environ["HOME"])  # conftest's isolated_git: a stand-in inside the test's tmp
    project = Project(tmp_path, repo, tmp_path / "MARKER", home, workers)
    agents_dir = tmp_path / "agents"
    agents_dir.mkdir()
    agents = {}
    for w in workers:
        script = agents_dir / f"{w.id}.sh"
        script.write_text("set -u\n" + textwrap.dedent(w.script))
        agents[f"hostile-{w.id.lower()}"] = {
            "command": f"bash {script}",
            "env": {"MARKER": str(project.marker), "ATTACK_ROOT": str(tmp_path)},
        }
    boss_dir = repo / ".boss"
    (boss_dir / "plans" / PLAN).mkdir(parents=True)
    (boss_dir / "config.yaml").write_text(yaml.safe_dump({"sandbox": sandbox, "agents": agents}))
    manifest = {
        "version": 1,
        "plan": PLAN,
        "base": "main",
        "base_commit": git(repo, "rev-parse", "HEAD"),
        "integration_test": integration_test,
        "setup": setup,
        "defaults": {"max_iterations": 1, "max_strategies": 1, "agent_timeout": 30, "test_timeout": 30},
        "workers": [
            {
                "id": w.id,
                "title": f"Attack {w.id}",
                "branch": f"attack/{w.id.lower()}",
                "scope": w.scope,
                "test": w.test,
                "depends_on": w.depends_on,
                "agent": f"hostile-{w.id.lower()}",
                "instructions": "Write src/feature.py.",
                **w.extra,
            }
            for w in workers
        ],
    }
    (boss_dir / "plans" / PLAN / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    project.boss("render", PLAN, check=0)
    return project
