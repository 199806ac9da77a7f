"""boss demo: the whole story, end to end, in well under a minute.

A demo runs seven agents and a ceremony (the heaviest test of the suite): the tests run it twice,
without the sandbox and with it, the second over the first with --force."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import time
from pathlib import Path

from conftest import boss, git


def test_demo_tells_the_whole_story_and_force_replaces_an_earlier_demo(tmp_path):
    """The demo tells the same story on a machine without a sandbox (auto) and with one; the
    second run is refused in the folder of the first, then replaces it with --force."""
    target = tmp_path / "demo"
    story(target, tmp_path, "/nonexistent/bwrap")
    refused = boss("demo", str(target), cwd=tmp_path, check=2)
    assert refused.stderr.startswith("Error:") and "--force" in refused.stderr
    story(target, tmp_path, "bwrap", "--force")


def story(target: Path, cwd: Path, bwrap: str, *force: str) -> None:
    """`boss demo target` (with BOSS_BWRAP=bwrap) tells the whole story in under a minute."""
    start = time.monotonic()
    res = boss("demo", str(target), *force, cwd=cwd, env={"BOSS_BWRAP": bwrap, "BOSS_SANDBOX": "auto"})
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


def test_demo_refuses_a_folder_in_use_that_holds_no_demo_even_with_force(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "precious.txt").write_text("keep me")
    for force in ((), ("--force",)):
        res = boss("demo", str(busy), *force, cwd=tmp_path, check=2)
        assert res.stderr.startswith("Error:") and "not empty" in res.stderr
        assert "--force" not in res.stderr  # no earlier demo there: nothing to replace
    assert (busy / "precious.txt").read_text() == "keep me"


def _bwrap_works() -> bool:
    from boss.core import sandbox

    tool = shutil.which("bwrap")
    return tool is not None and not sandbox.probe(tool)
