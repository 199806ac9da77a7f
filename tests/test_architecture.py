"""The house's rules (README, "Developing boss"): layers, one-way imports, no cycles, small modules.

The import rules are import-linter contracts in pyproject.toml; scripts/test.sh runs them on the
clone, and these tests show that they hold there and that each one breaks when a deliberately
wrong import is added to a copy of the source.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
MAX_LINES = 400
MAX_CLI_LINES = 150
PACKAGES = ("boss", "worker")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the source under root, with root's pyproject.toml."""
    return subprocess.run(
        [str(LINT), "--no-cache", "--no-logo"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "HOME": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_the_contracts_hold_on_this_source():
    res = lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"Contracts: (\d+) kept, 0 broken", res.stdout), res.stdout
    kept = int(re.search(r"Contracts: (\d+) kept", res.stdout).group(1))  # type: ignore[union-attr]
    assert kept >= 5


# (file, the import added at its end, the contract that must break)
VIOLATIONS = [
    ("boss/core/paths.py", "from boss.plan import render", "The core imports nothing above it"),
    ("boss/core/status.py", "from worker.lifecycle import gates", "The core imports nothing above it"),
    ("boss/core/paths.py", "from boss.ceremony import triage", "Layers: the command lines on top"),
    ("boss/plan/render.py", "from boss.ceremony import report", "Layers: the command lines on top"),
    ("worker/autonomy/policy.py", "from worker.agents import profile", "Layers: the command lines on top"),
    ("boss/ceremony/merge.py", "from worker.agents import registry", "boss reaches the worker only through"),
    ("boss/cli/status.py", "from worker.lifecycle import gates", "boss reaches the worker only through"),
    ("worker/lifecycle/pool.py", "from boss.ceremony import triage", "The worker uses only the core of boss"),
    ("boss/core/yamlio.py", "from boss.core import journal", "No import cycles"),
    ("worker/autonomy/shellparse.py", "from worker.autonomy import classify", "No import cycles"),
]


@pytest.mark.parametrize(("path", "line", "contract"), VIOLATIONS, ids=[f"{v[0]}:{v[1]}" for v in VIOLATIONS])
def test_a_deliberately_wrong_import_breaks_its_contract(tmp_path, path, line, contract):
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert lint(tmp_path).returncode == 0  # the copy is as good as the original
    target = tmp_path / path
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    res = lint(tmp_path)
    assert res.returncode != 0, res.stdout
    broken = res.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, res.stdout


def test_no_module_is_over_400_lines():
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules (at most {MAX_LINES} lines each): {long}"


def test_the_command_lines_are_thin():
    cli = [p for pkg in PACKAGES for p in (ROOT / pkg / "cli").glob("*.py")]
    assert len(cli) > 10
    thick = {
        p.relative_to(ROOT).as_posix(): n
        for p in cli
        if (n := len(p.read_text().splitlines())) > MAX_CLI_LINES
    }
    assert not thick, (
        f"move the work of these commands out of the CLI (at most {MAX_CLI_LINES} lines): {thick}"
    )


IMPORTS_WORKER = re.compile(r"^\s*(from|import)\s+worker\b", re.M)


def test_nothing_below_the_command_line_imports_the_worker():
    """What `git grep "from worker" boss/core` checks, for every part of boss but its CLI (which
    reaches the worker through worker.api only, a contract checks that)."""
    for part in ("core", "plan", "ceremony", "demo"):
        found = [
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / "boss" / part).rglob("*.py")
            if IMPORTS_WORKER.search(p.read_text())
        ]
        assert not found, f"boss/{part} imports the worker: {found}"


def test_every_folder_says_what_lives_there():
    for pkg in PACKAGES:
        for init in (ROOT / pkg).rglob("__init__.py"):
            text = init.read_text(encoding="utf-8")
            assert text.startswith('"""') and len(text) > 60, f"{init.relative_to(ROOT)}: say what lives here"


def test_the_readme_maps_every_folder():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Developing boss", 1)[1].split("\n## ", 1)[0]
    folders = {
        init.parent.relative_to(ROOT).as_posix()
        for pkg in PACKAGES
        for init in (ROOT / pkg).rglob("__init__.py")
    }
    missing = sorted(f for f in folders if f"`{f}/`" not in section)
    assert not missing, f"the README's map of the house misses {missing}"
