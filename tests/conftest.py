"""Shared fixtures: isolated git, real temporary repositories, CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


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
