"""boss demo: the whole story, end to end, in well under a minute."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest
from conftest import boss, git


@pytest.mark.parametrize("bwrap", ["bwrap", "/nonexistent/bwrap"], ids=["sandbox-if-any", "no-sandbox"])
def test_demo_tells_the_whole_story(tmp_path, bwrap):
    """The demo tells the same story with the sandbox and on a machine without one (auto)."""
    target = tmp_path / "demo"
    start = time.monotonic()
    res = boss("demo", str(target), cwd=tmp_path, env={"BOSS_BWRAP": bwrap, "BOSS_SANDBOX": "auto"})
    elapsed = time.monotonic() - start
    assert elapsed < 60, elapsed
    out = res.stdout
    for n in range(1, 7):
        assert f"Step {n}/6" in out
    # every file the story says to open is where it says
    opened = re.findall(r"^   open (\S+)$", out, re.M)
    assert len(opened) >= 8
    for path in opened:
        assert Path(path).exists(), path
    for wid, verdict in (
        ("W1", "MERGED"),
        ("W3", "FAILED"),
        ("W4", "MERGED"),
        ("W6", "CONFLICT"),
        ("W7", "REVERTED"),
    ):
        assert f"   as designed: {wid} {verdict}\n" in out
    assert "!!" not in out and "ok W3" not in out
    # every command the story shows pastes as it prints: the shell reads back the words it ran
    shown = [shlex.split(line) for line in re.findall(r"^   \$ (.*)$", out, re.M)]
    assert ["boss", "merge", "shop-features"] in shown
    salvage = next(words for words in shown if words[1:3] == ["quarantine", "salvage"])
    assert salvage[salvage.index("--reason") + 1 :] == ["the receipt code is fine; drop README"]
    assert "Done in" in out
    # the sample repository's main has the good work and nothing else; its checkout is clean
    files = git(target, "ls-tree", "-r", "--name-only", "main").split()
    assert {"shop/discount.py", "shop/checkout.py", "shop/receipt.py"} <= set(files)
    assert "shop/currency.py" not in files
    assert "Receipts" not in git(target, "show", "main:README.md")
    assert git(target, "status", "--porcelain") == ""
    # every worker that ran says what confined it
    ran = [json.loads(p.read_text()) for p in target.glob(".boss/plans/*/workers/*/status.json")]
    said = {s["sandbox"].split(":")[0] for s in ran if s.get("started_at")}
    assert said == (
        {"none"} if bwrap.startswith("/nonexistent") else {"bubblewrap"} if _bwrap_works() else {"none"}
    )


def test_demo_refuses_a_folder_in_use_and_replaces_an_earlier_demo_with_force(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "precious.txt").write_text("keep me")
    res = boss("demo", str(busy), cwd=tmp_path, check=2)
    assert res.stderr.startswith("Error:") and "not empty" in res.stderr
    assert (busy / "precious.txt").read_text() == "keep me"
    target = tmp_path / "d"
    boss("demo", str(target), cwd=tmp_path)
    assert "--force" in boss("demo", str(target), cwd=tmp_path, check=2).stderr
    boss("demo", str(target), "--force", cwd=tmp_path)


def _bwrap_works() -> bool:
    from boss.core import sandbox

    tool = shutil.which("bwrap")
    return tool is not None and not sandbox.probe(tool)
