"""The Boss never touches code: every boss command of the planning stage leaves the user's
tracked files, their contents, the index, HEAD and `git status --ignored` (outside .boss/) as
they were, in a repository with staged, modified, untracked and ignored files."""

from __future__ import annotations

import hashlib
import shlex
import sys
from pathlib import Path

import yaml
from conftest import boss, git, make_repo, write_files

PLANNER = Path(__file__).parent / "planners" / "scripted_planner.py"

PLAN_MD = """\
# Hands off
Touch nothing.

## W1: Core
- scope: ^src/core/
- test: test -f src/core/done

Write src/core/done.

## W2: Docs
- scope: ^docs/
- depends on: W1
- test: test -f docs/done

Write docs/done.
"""


def snapshot(repo: Path) -> dict:
    """What a user would notice changing: files, contents, index, HEAD, refs and status."""
    tracked = git(repo, "ls-files", "-z").split("\0")
    status = git(repo, "status", "--porcelain=v1", "--ignored", "--untracked-files=all")
    return {
        "files": {
            p: hashlib.sha256((repo / p).read_bytes()).hexdigest() if (repo / p).exists() else None
            for p in tracked
            if p
        },
        "index": git(repo, "ls-files", "--stage"),
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        "status": sorted(line for line in status.splitlines() if not line[3:].startswith(".boss/")),
        "untracked": {
            p: (repo / p).read_text()
            for p in ("scratch.txt", "build/out.log", "src/core/new_module.py")
            if (repo / p).exists()
        },
    }


def test_boss_commands_leave_the_users_code_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("BOSS_SANDBOX", "off")  # its scripted planner counts attempts beside the repo
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitignore": "build/\n",
            "README.md": "# app\n",
            "src/core/main.py": "print('hi')\n",
            "src/core/util.py": "X = 1\n",
            "docs/index.md": "docs\n",
            "packages/a/x.py": "",
            "packages/b/y.py": "",
        },
    )
    # Work in progress the Boss must not stage, clean, reset or commit.
    (repo / "src/core/main.py").write_text("print('edited, not staged')\n")
    (repo / "src/core/util.py").write_text("X = 2  # staged\n")
    git(repo, "add", "src/core/util.py")
    write_files(
        repo, {"scratch.txt": "notes\n", "build/out.log": "ignored\n", "src/core/new_module.py": "new\n"}
    )
    (repo / "plan.md").write_text(PLAN_MD)
    git(repo, "add", "plan.md")
    state = tmp_path / "planner-state"
    state.mkdir()
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(PLANNER))} wrong-then-right"
    config = {"agents": {"fixer": {"command": command, "env": {"PLANNER_STATE": str(state / "count")}}}}
    write_files(repo, {".boss/config.yaml": yaml.safe_dump(config)})
    monkeypatch.chdir(repo)

    before = snapshot(repo)
    commands = [
        (["plan", "--from", "plan.md"], 0),
        (["plan", "--from", "plan.md"], 2),  # exists already
        (["plan", "--from", "plan.md", "--force", "--base", "main"], 0),
        (["plan", "--split", "packages/*", "--test", "test -f {dir}/done", "Mark packages"], 0),
        (["plan", "--agent", "fixer", "Add a login flow"], 0),
        (["render", "hands-off"], 0),
        (["render", "mark-packages", "--force"], 0),
        (["validate", "login"], 0),
        (["validate", "hands-off", "--json"], 0),
        (["validate"], 2),  # several plans: name one
        (["plan", "--split", "nothing/*", "--test", "t", "T"], 2),
    ]
    for args, code in commands:
        boss(*args, cwd=repo, check=code)
        assert snapshot(repo) == before, args
    # The planner tried to write into the checkout it ran in: that was a throwaway worktree.
    assert not (repo / "planted-by-planner.txt").exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    exclude = (repo / ".git/info/exclude").read_text().splitlines()
    assert exclude.count(".boss/") == 1 and exclude.count(".worktrees/") == 1
    assert ".boss" not in (repo / ".gitignore").read_text()
