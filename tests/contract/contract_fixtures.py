"""Fixtures of the contract suite: the real agent CLIs, a scripted model server, a proxy sink.

A plugin (`pytest_plugins` in tests/conftest.py), not a second conftest.py: the test modules
import helpers `from conftest import ...`, and two conftest modules would shadow each other.

The CLIs come from `scripts/install_clis.sh` (pinned versions, cached outside the clone).
BOSS_CONTRACT_BIN names a folder that already holds them; otherwise the script is run once per
session. Where they cannot be installed the suite is skipped, except when
BOSS_CONTRACT_REQUIRED=1 (CI sets it): then it fails.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from mock_server import ModelServer  # noqa: E402
from sink import ProxySink  # noqa: E402

CLIS = ("claude", "codex", "gemini", "opencode", "aider")


def _install() -> Path:
    given = os.environ.get("BOSS_CONTRACT_BIN")
    if given:
        return Path(given)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install_clis.sh")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/install_clis.sh failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def cli_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding the real CLIs (claude, codex, gemini, opencode, aider)."""
    # Each pytest-xdist worker is a session of its own: one installs at a time (the script
    # replaces a half-made install), the others then find the cache complete. The lock lives in
    # the folder the workers' temporary folders share.
    lock = tmp_path_factory.getbasetemp().parent / "install_clis.lock"
    try:
        with lock.open("w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            folder = _install()
        missing = [c for c in CLIS if not (folder / c).exists()]
        if missing:
            raise RuntimeError(f"{folder}: missing {', '.join(missing)}")
    except (RuntimeError, OSError) as e:
        if os.environ.get("BOSS_CONTRACT_REQUIRED") == "1":
            pytest.fail(f"the real agent CLIs are required here: {e}")
        pytest.skip(f"the real agent CLIs are not installed: {e}")
    return folder


@pytest.fixture
def model(tmp_path: Path) -> Iterator[ModelServer]:
    """A scripted model server on 127.0.0.1 (script it with `model.script(...)`)."""
    with ModelServer(log_path=tmp_path / "model-requests.jsonl") as server:
        yield server


@pytest.fixture
def sink() -> Iterator[ProxySink]:
    """The proxy every CLI is given: it records and refuses any egress."""
    with ProxySink() as s:
        yield s


@pytest.fixture
def scratch(tmp_path: Path, cli_bin: Path, sink: ProxySink, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch HOME (and XDG folders, TMPDIR) for the CLI, the proxy sink, the CLIs on PATH.

    Set in this process's environment, so boss, run_workers.sh, the worker and the agent CLI it
    starts all inherit it. Returns HOME.
    """
    home = tmp_path / "home"
    for sub in ("", ".config", ".cache", ".local/share", ".local/state"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "TMPDIR": str(tmp),
        "PATH": os.pathsep.join(
            [str(cli_bin), str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "BOSS_PYTHON": sys.executable,
    }
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        env[var] = sink.url
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for var in [v for v in os.environ if v.startswith(("ANTHROPIC_", "OPENAI_", "GEMINI_", "GOOGLE_", "CODEX_",
                                                      "OPENCODE_", "AIDER_", "CLAUDE_"))]:  # fmt: skip
        monkeypatch.delenv(var)
    return home
