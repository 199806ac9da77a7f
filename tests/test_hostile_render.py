"""Hostile strings: manifest values full of shell syntax reach generated files, and nothing runs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import boss, git

from boss.core import manifest as mf
from boss.core.mdtext import code, oneline
from boss.plan.markdown_plan import parse
from worker.agents.scripted import load_script


def payloads(marker: Path) -> list[str]:
    """Strings that create marker if any shell ever evaluates them."""
    return [
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"; touch {marker}; #",
        f"' ; touch {marker} ; '",
        f'" ; touch {marker} ; "',
        f'\\"$(touch {marker})\\"',
        f"line one\ntouch {marker}\n",
        f"$'\\x74ouch' {marker}",
        "ünïcødé ☃ 日本語",
    ]


def hostile_manifest(repo: Path, marker: Path) -> dict:
    evil = payloads(marker)
    joined = " ".join(evil)
    ifs_marker = "${IFS}" + str(marker)
    branches = [
        f"feat/$(touch{ifs_marker})",
        f"feat/`touch{ifs_marker}`",
        f"feat/x;touch{ifs_marker}",
        'feat/it\'s"quoted"',
        "feat/ünï☃",
    ]
    workers = []
    for i, (payload, branch) in enumerate(zip(evil, branches, strict=False)):
        workers.append(
            {
                "id": f"W{i + 1}",
                "title": f"Title {payload}",
                "branch": branch,
                "scope": [f"^src/w{i + 1}/", f"^docs/{re.escape(payload)}"],
                "test": f"true {payload}",
                "instructions": f"Do this: {joined}\n\n```agent-script\n- print: {payload!r}\n```\n",
                "depends_on": [f"W{i}"] if i else [],
            }
        )
    return {
        "version": 1,
        "plan": "hostile",
        "task": joined,
        "base": "main",
        "base_commit": git(repo, "rev-parse", "HEAD"),
        "integration_test": f"true {joined}",
        "setup": f"true {joined}",
        "copy": [f"$(touch {marker})", "`x`;y"],
        "workers": workers,
    }


FAKE_WORKER = """#!/usr/bin/env bash
# Stands in for `worker`: records its arguments, one call per line, and succeeds. As the pool,
# it records each command the script sends as `VERB|PLAN|ID|` and reports every run a success.
printf '%s|' "$@" >> "$FAKE_LOG"
echo >> "$FAKE_LOG"
if [[ "$1" == pool ]]; then
  echo ready >&3
  while read -r verb id _; do
    [[ "$verb" == end ]] && { echo summary; break; }
    printf '%s|%s|%s|\n' "$verb" "$2" "$id" >> "$FAKE_LOG"
    [[ "$verb" == run ]] && echo "done $id 0" >&3
  done
fi
exit 0
"""


def strings_of(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in strings_of(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_of(v)]
    return []


def check_generated_files(repo: Path, raw: dict, marker: Path, tmp_path: Path) -> None:
    root = repo / ".boss/plans/hostile"
    script = root / "run_workers.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    res = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
    text = script.read_text()
    # Every manifest value that reaches the script is there only in its shell-quoted form.
    for value in strings_of(raw):
        if len(value) > 3 and value in text:
            assert shlex.quote(value) in text, value
    # Running it (with a stand-in worker) runs no payload, and passes the ids through intact.
    fake = tmp_path / "fake-worker"
    fake.write_text(FAKE_WORKER)
    fake.chmod(0o755)
    log = tmp_path / "fake.log"
    env = {**os.environ, "BOSS_WORKER_BIN": str(fake), "FAKE_LOG": str(log)}
    res = subprocess.run(["bash", str(script)], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    calls = log.read_text().splitlines()
    ids = [w["id"] for w in raw["workers"]]
    assert sorted(c for c in calls if c.startswith("run|")) == sorted(f"run|hostile|{i}|" for i in ids)
    assert not marker.exists()
    # The Markdown keeps its shape: no value adds a heading, and the instructions are verbatim.
    plan_md = (root / "plan.md").read_text()
    waves = len(mf.from_dict(raw, "manifest.yaml").waves())
    headings = [line for line in plan_md.splitlines() if line.startswith("#")]
    assert headings == ["# Plan `hostile`", "## Waves", *(f"### Wave {i}" for i in range(1, waves + 1)),
                        "## Scope overlaps", "## Dependency graph"]  # fmt: skip
    graph = plan_md.split("```mermaid\n")[1].split("\n```")[0]
    assert all(
        re.fullmatch(r'  n\d+\["[^"\n]*"\]|  n\d+ --> n\d+|flowchart TD', line) for line in graph.splitlines()
    )
    for w in raw["workers"]:
        context = (root / "workers" / w["id"] / "CONTEXT.md").read_text()
        assert w["instructions"] in context
        assert load_script(context) == load_script(w["instructions"])
        assert context.splitlines()[0] == f"# {w['id']}: {oneline(w['title'])}"


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def test_a_hostile_manifest_renders_and_runs_nothing(repo, tmp_path, marker):
    raw = hostile_manifest(repo, marker)
    path = repo / ".boss/plans/hostile/manifest.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    boss("validate", cwd=repo)
    boss("render", cwd=repo)
    boss("render", "--force", cwd=repo)
    check_generated_files(repo, raw, marker, tmp_path)
    m = mf.load(path)
    assert m.workers[0].branch == raw["workers"][0]["branch"] and m.task == raw["task"]


def test_a_hostile_markdown_plan_renders_and_runs_nothing(repo, tmp_path, marker):
    evil = payloads(marker)
    lines = ["# Hostile", f"Task: {' '.join(e for e in evil if chr(10) not in e)}", ""]
    lines += [f"- integration test: `true {evil[0]} {evil[1]}`", f"- setup: true {evil[2]}", ""]
    for i, payload in enumerate(evil[:5]):
        one_line = payload.replace("\n", " ")
        lines += [
            f"## W{i + 1}: Title {one_line}",
            f"- scope: `^src/w{i + 1}/`, {code('^docs/' + re.escape(one_line))}",
            f"- test: true {one_line}",
            f"- branch: feat/w{i + 1}-$(touch${{IFS}}{marker})",
            "",
            f"Instructions with {payload}",
            "",
        ]
    (repo / "hostile.md").write_text("\n".join(lines))
    raw = parse((repo / "hostile.md").read_text(), "hostile.md")
    assert raw["plan"] == "hostile"
    res = boss("plan", "--from", "hostile.md", cwd=repo)
    # its only warnings: the scopes match no file yet (the hostile text is in no warning's way)
    warned = [line for line in res.stderr.splitlines() if line.startswith("Warning")]
    assert len(warned) == 10 and all("matches no file tracked on main" in line for line in warned)
    saved = yaml.safe_load((repo / ".boss/plans/hostile/manifest.yaml").read_text())
    assert saved["workers"][0]["test"] == f"true {evil[0]}"
    assert saved["workers"][3]["title"] == f"Title {evil[3]}"
    check_generated_files(repo, saved, marker, tmp_path)
