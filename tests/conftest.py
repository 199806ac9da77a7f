"""Shared fixtures: isolated git, real temporary repositories, CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "contract"))

# The contract suite's fixtures (real agent CLIs, scripted model server, proxy sink).
pytest_plugins = ["contract_fixtures"]


def _tagged_processes(tag: str) -> list[str]:
    """Live processes (not zombies) whose environment carries this test's tag."""
    found = []
    needle = f"BOSS_TEST_TAG={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {cmdline[:120]}")
        except OSError:
            continue
    return found


@pytest.fixture(autouse=True)
def no_leftover_processes(request, monkeypatch):
    """The tool never leaves processes behind: every process a test started is gone after it.

    Each test's children inherit a unique tag in their environment, which finds orphans too.
    """
    if not Path("/proc/self/environ").exists():  # pragma: no cover - Linux only
        yield
        return
    tag = f"{os.getpid()}-{id(request)}"
    monkeypatch.setenv("BOSS_TEST_TAG", tag)
    yield
    deadline = time.monotonic() + 5
    left = _tagged_processes(tag)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _tagged_processes(tag)
    assert not left, f"processes left behind: {left}"


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory, monkeypatch):
    """Every test gets its own git identity and config; nothing reads the real home."""
    home = tmp_path_factory.mktemp("home")
    cfg = home / "gitconfig"
    cfg.write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "BOSS_PLAN", "BOSS_WORKER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


def git(repo: Path, *args: str) -> str:
    """Run git in repo for a test and return stdout."""
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def write_files(root: Path, files: dict[str, str]) -> None:
    """Create files from a {relative path: content} dict."""
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A real git repository on main with one commit of files."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    write_files(path, files or {"README.md": "# sample\n"})
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A fresh repository with one commit; the test runs from inside it."""
    r = make_repo(tmp_path / "repo")
    monkeypatch.chdir(r)
    return r


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def boss(*args: str, cwd: Path | None = None, check: int | None = 0, env=None):
    """Run the installed `boss` as a user would; assert the exit code when check is not None."""
    proc = subprocess.run(
        [sys.executable, "-m", "boss", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def worker_cmd(*args: str, cwd: Path | None = None, check: int | None = 0, env=None):
    """Run the installed `worker` as run_workers.sh does."""
    proc = subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc
