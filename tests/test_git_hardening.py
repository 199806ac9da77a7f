"""boss.core.gitsafe: what a repository configures git to run never runs in boss's own git commands.

Each mechanism is planted in a real repository with a script that writes a marker. A plain
`git` proves the plant works; then a worker run and a `boss merge` (every git operation boss
has: worktrees, checkout, add, commit, status, diff, merge, merge-tree, update-ref, read-tree)
must leave the marker unwritten.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import git, make_repo
from merge_helpers import make_scenario, spec
from worker_helpers import make_plan, worker

from boss.ceremony import merge
from boss.core import git as bgit
from boss.core import gitsafe, gittrees
from boss.core import status as st
from boss.core.config import load_config
from worker.lifecycle.run import run_worker

HOOKS = (
    "pre-commit", "prepare-commit-msg", "commit-msg", "post-commit", "post-checkout", "post-merge",
    "pre-merge-commit", "reference-transaction", "post-index-change", "post-rewrite", "pre-auto-gc",
)  # fmt: skip


def _script(path: Path, mark: Path, tail: str = "exit 0") -> str:
    """A program that notes each run in mark (then tail: `cat` for a filter)."""
    path.write_text(f'#!/bin/sh\necho "$(basename "$0") $*" >> "{mark}"\n{tail}\n')
    path.chmod(0o755)
    return str(path)


def _config(repo: Path, *pairs: str) -> None:
    for i in range(0, len(pairs), 2):
        git(repo, "config", pairs[i], pairs[i + 1])


def _hooks(repo: Path, folder: Path, mark: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        _script(folder / name, mark)


def plant_hooks(repo: Path, tools: Path, mark: Path) -> None:
    _hooks(repo, repo / ".git" / "hooks", mark)


def plant_hooks_path(repo: Path, tools: Path, mark: Path) -> None:
    _hooks(repo, tools / "hooks", mark)
    _config(repo, "core.hooksPath", str(tools / "hooks"))


def plant_fsmonitor(repo: Path, tools: Path, mark: Path) -> None:
    _config(repo, "core.fsmonitor", _script(tools / "fsmonitor", mark, "exit 1"))


def _filter(repo: Path, tools: Path, mark: Path, name: str = "ev") -> None:
    clean = _script(tools / "clean", mark, "cat")
    smudge = _script(tools / "smudge", mark, "cat")
    _config(
        repo,
        f"filter.{name}.clean",
        clean,
        f"filter.{name}.smudge",
        smudge,
        f"filter.{name}.required",
        "true",
    )


def plant_filter_info_attributes(repo: Path, tools: Path, mark: Path) -> None:
    (repo / ".git" / "info" / "attributes").write_text("* filter=ev\n")
    _filter(repo, tools, mark)


def plant_filter_gitattributes(repo: Path, tools: Path, mark: Path) -> None:
    (repo / ".gitattributes").write_text("*.txt filter=ev\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-qm", "attributes")
    _filter(repo, tools, mark)


def plant_filter_process(repo: Path, tools: Path, mark: Path) -> None:
    (repo / ".git" / "info" / "attributes").write_text("* filter=pr\n")
    _config(repo, "filter.pr.process", _script(tools / "process", mark, "exit 1"))


def plant_diff_drivers(repo: Path, tools: Path, mark: Path) -> None:
    (repo / ".git" / "info" / "attributes").write_text("* diff=ev\n")
    _config(repo, "diff.external", _script(tools / "external", mark))
    _config(repo, "diff.ev.textconv", _script(tools / "textconv", mark, 'cat "$1"'))
    _config(repo, "diff.ev.command", _script(tools / "command", mark))


def plant_merge_driver(repo: Path, tools: Path, mark: Path) -> None:
    (repo / ".git" / "info" / "attributes").write_text("* merge=ev\n")
    _config(repo, "merge.ev.driver", _script(tools / "driver", mark) + " %A %O %B")


def plant_include(repo: Path, tools: Path, mark: Path) -> None:
    _hooks(repo, tools / "hooks", mark)
    inc = tools / "inc.cfg"
    inc.write_text(
        f'[core]\n\thooksPath = {tools / "hooks"}\n[filter "inc"]\n\tclean = {_script(tools / "clean", mark, "cat")}\n'
        f"\tsmudge = {_script(tools / 'smudge', mark, 'cat')}\n"
    )
    cond = tools / "cond.cfg"
    cond.write_text(f"[core]\n\tfsmonitor = {_script(tools / 'fsmonitor', mark, 'exit 1')}\n")
    (repo / ".git" / "info" / "attributes").write_text("* filter=inc\n")
    with (repo / ".git" / "config").open("a") as f:  # relative to .git/, and a condition that holds
        f.write(
            f'[include]\n\tpath = {Path("..", "..", "tools", "inc.cfg")}\n[includeIf "gitdir:/"]\n\tpath = {cond}\n'
        )


def plant_worktree_config(repo: Path, tools: Path, mark: Path) -> None:
    _hooks(repo, tools / "hooks", mark)
    _config(repo, "extensions.worktreeConfig", "true")
    (repo / ".git" / "info" / "attributes").write_text("* filter=wt\n")
    clean, smudge = _script(tools / "clean", mark, "cat"), _script(tools / "smudge", mark, "cat")
    (repo / ".git" / "config.worktree").write_text(
        f'[core]\n\thooksPath = {tools / "hooks"}\n[filter "wt"]\n\tclean = {clean}\n\tsmudge = {smudge}\n'
    )


def plant_signing(repo: Path, tools: Path, mark: Path) -> None:
    _config(repo, "commit.gpgSign", "true", "tag.gpgSign", "true", "log.showSignature", "true")
    _config(repo, "gpg.program", _script(tools / "gpg", mark, "exit 1"))


def plant_editor_and_pager(repo: Path, tools: Path, mark: Path) -> None:
    _config(repo, "core.editor", _script(tools / "editor", mark), "sequence.editor", str(tools / "editor"))
    _config(repo, "core.pager", _script(tools / "pager", mark, "cat"), "pager.status", str(tools / "pager"))


def _changed(repo: Path) -> None:
    with (repo / "src" / "shared.txt").open("a") as f:
        f.write("more\n")


def _plain(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)


def _conflicting_merge(repo: Path) -> None:
    _plain(repo, "checkout", "-q", "-b", "x1")
    (repo / "src" / "shared.txt").write_text("ONE\ntwo\nthree\n")
    _plain(repo, "commit", "-qam", "x1")
    _plain(repo, "checkout", "-q", "-b", "x2", "HEAD~1")
    (repo / "src" / "shared.txt").write_text("one\ntwo\nTHREE\n")
    _plain(repo, "commit", "-qam", "x2")
    _plain(repo, "merge", "-q", "--no-edit", "x1")


# name: (plant, what plain git does to run it)
MECHANISMS: dict[str, tuple[Callable[[Path, Path, Path], None], Callable[[Path], None]]] = {
    "hooks": (plant_hooks, lambda r: _plain(r, "commit", "-q", "--allow-empty", "-m", "x")),
    "core.hooksPath": (plant_hooks_path, lambda r: _plain(r, "checkout", "-q", "-b", "x")),
    "core.fsmonitor": (plant_fsmonitor, lambda r: _plain(r, "status", "--porcelain")),
    "filter in info/attributes": (
        plant_filter_info_attributes,
        lambda r: (_changed(r), _plain(r, "add", "-A")),
    ),
    "filter in .gitattributes": (plant_filter_gitattributes, lambda r: (_changed(r), _plain(r, "add", "-A"))),
    "filter process": (plant_filter_process, lambda r: (_changed(r), _plain(r, "add", "-A"))),
    "diff.external, textconv": (plant_diff_drivers, lambda r: (_changed(r), _plain(r, "diff"))),
    "merge driver": (plant_merge_driver, _conflicting_merge),
    "include.path, includeIf": (plant_include, lambda r: (_changed(r), _plain(r, "add", "-A"))),
    "config.worktree": (plant_worktree_config, lambda r: (_changed(r), _plain(r, "add", "-A"))),
    "gpg.program": (plant_signing, lambda r: _plain(r, "commit", "-q", "--allow-empty", "-m", "x")),
    "core.editor": (plant_editor_and_pager, lambda r: _plain(r, "commit", "-q", "--allow-empty")),
}
FILES = {"README.md": "# sample\n", "src/shared.txt": "one\ntwo\nthree\n", "check.sh": "echo ok\n"}


def _planted(root: Path, name: str) -> tuple[Path, Path]:
    """(repo, marker file) with the mechanism planted (the repo made here, or reused)."""
    repo = root / "repo" if (root / "repo").is_dir() else make_repo(root / "repo", FILES)
    tools, mark = root / "tools", root / "marker"
    tools.mkdir(exist_ok=True)
    MECHANISMS[name][0](repo, tools, mark)
    return repo, mark


@pytest.mark.parametrize("name", MECHANISMS)
def test_the_plant_runs_for_plain_git(tmp_path: Path, name: str) -> None:
    repo, mark = _planted(tmp_path, name)
    MECHANISMS[name][1](repo)
    assert mark.exists(), f"{name}: plain git did not run it; the plant proves nothing"


@pytest.mark.parametrize("name", MECHANISMS)
def test_a_worker_run_never_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    repo, mark = _planted(tmp_path, name)
    monkeypatch.chdir(repo)
    write = {"write": {"src/done.txt": "x\n"}, "append": {"src/shared.txt": "four\n"}}
    paths, m = make_plan(repo, [worker("W1", steps=[write])])
    assert run_worker(paths, m, load_config(repo), "W1") == st.SUCCESS, st.read(paths.status("W1")).reason
    assert not mark.exists(), mark.read_text()
    assert bgit.git(repo, "show", f"{m.workers[0].branch}:src/done.txt").stdout == "x\n"


@pytest.mark.parametrize("name", MECHANISMS)
def test_boss_merge_never_runs_it(tmp_path: Path, name: str) -> None:
    s = make_scenario(tmp_path / "repo", [spec("W1"), spec("W2")], files=FILES, integration_test="true")
    s.work("W1", {"src/shared.txt": "ONE\ntwo\nthree\n"})
    s.work("W2", {"src/shared.txt": "one\ntwo\nTHREE\n"})  # merged after W1: a three-way merge
    _, mark = _planted(tmp_path, name)
    j = merge.run(s.paths, s.m, load_config(s.repo), lambda _line: None)
    assert {r.id: r.verdict for r in j.records} == {"W1": "MERGED", "W2": "MERGED"}, j.message
    assert j.landed and not mark.exists(), mark.read_text()
    shown = bgit.git(s.repo, "show", "main:src/shared.txt").stdout
    assert shown == "ONE\ntwo\nTHREE\n"  # the driver's stand-in merges as git's own text merge does


@pytest.mark.parametrize("name", ["diff.external, textconv", "core.editor"])
def test_diffs_and_commits_without_a_message_run_neither_drivers_nor_editors(
    tmp_path: Path, name: str
) -> None:
    repo, mark = _planted(tmp_path, name)
    _changed(repo)
    head = bgit.head(repo)
    assert "+more" in bgit.git(repo, "diff", "HEAD").stdout
    bgit.changed_paths(repo, head)
    gittrees.index_at(repo, head)
    bgit.git(repo, "commit", "-q", "--allow-empty", check=False)  # no message: the editor would be asked
    bgit.commit_all(repo, "more")
    assert "+more" in bgit.git(repo, "show", "HEAD").stdout
    assert "+more" in gittrees.diff_text(repo, head, "HEAD", ["src/shared.txt"])
    bgit.git(repo, "status")
    assert not mark.exists(), mark.read_text()


# --- the config reader and the environment ---


def test_driver_names_are_found_in_every_spelling_and_every_include(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inc.cfg").write_text(
        '[merge "from-include"]\n\tdriver = x\n[include]\n\tpath = deeper.cfg\n'
    )
    (tmp_path / "sub" / "deeper.cfg").write_text(
        '[filter "deep"]\n\tclean = x\n[include]\n\tpath = deeper.cfg\n'
    )
    (tmp_path / "cond.cfg").write_text("[filter.OldStyle]\n\tclean = x\n")
    (tmp_path / "cont.cfg").write_text('[filter "continued"]\n')
    config = tmp_path / "config"
    config.write_text(
        '\ufeff[FILTER "Quoted \\"odd\\" name=x.y"]\n\tclean = x\n'
        '  [filter "a"] clean = x\n'
        '[diff "d"]\n\ttextconv = x\n'
        '[core]\n\tpager = x \\\\\n[filter "after-escaped-backslash"]\n'
        "[include]\n\tpath = sub/inc.cfg ; a comment\n"
        f'[includeIf "onbranch:nope"]\n\tpath = "{tmp_path / "cond.cfg"}"\n'
        "[include]\n\tpath = co\\\nnt.cfg\n"
        "[include]\n\tpath = missing.cfg\n"
    )
    found = gitsafe.drivers([config, tmp_path / "absent"])
    assert found["filter"] == {
        'Quoted "odd" name=x.y',
        "a",
        "after-escaped-backslash",
        "deep",
        "oldstyle",
        "continued",
    }
    assert found["merge"] == {"from-include"} and found["diff"] == {"d"}


def test_the_environment_keeps_the_callers_config_and_drops_program_variables(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "config", "filter.x=y.clean", "evil")
    base = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "me",
            "GIT_EXTERNAL_DIFF": "evil", "GIT_SSH_COMMAND": "evil", "PATH": "/usr/bin:/bin"}  # fmt: skip
    env = gitsafe.environment(base, repo)
    assert (
        env["GIT_CONFIG_KEY_0"] == "user.name"
        and "GIT_EXTERNAL_DIFF" not in env
        and "GIT_SSH_COMMAND" not in env
    )
    pairs = {
        env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))
    }
    assert pairs["core.hooksPath"] == "/dev/null" and pairs["filter.x=y.clean"] == ""
    assert pairs["filter.x=y.required"] == "false"
    shown = subprocess.run(
        ["git", "-C", str(repo), "config", "filter.x=y.clean"], env=env, capture_output=True
    )
    assert shown.stdout == b"\n"  # git reads the name with its '=' exactly


def test_diff_flags_follow_a_diffing_subcommand_only() -> None:
    assert gitsafe.with_diff_flags(("-c", "a=b", "diff", "--quiet")) == (
        "-c",
        "a=b",
        "diff",
        *gitsafe.DIFF_FLAGS,
        "--quiet",
    )
    assert gitsafe.with_diff_flags(("status", "diff")) == ("status", "diff")
    assert gitsafe.with_diff_flags(()) == ()


def test_git_dirs_are_found_as_git_finds_them(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "worktree", "add", "-q", "-b", "w", str(tmp_path / "wt"))
    (tmp_path / "wt" / "deep").mkdir()
    assert gitsafe.git_dirs(repo) == (repo / ".git", repo / ".git")
    gitdir, common = gitsafe.git_dirs(tmp_path / "wt" / "deep") or (None, None)
    assert (
        gitdir == repo / ".git" / "worktrees" / "wt"
        and common is not None
        and common.resolve() == repo / ".git"
    )
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / ".git").write_text("not a gitfile\n")
    assert gitsafe.git_dirs(tmp_path / "bad") is None


def test_include_paths_with_escapes_and_home_and_a_bad_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "home.cfg").write_text('[filter "from-home"]\n')
    (tmp_path / "a\tb.cfg").write_text('[merge "tabbed"]\n')
    config = tmp_path / "config"
    config.write_text('[include]\n\tpath = ~/home.cfg\n\tpath = "a\\tb.cfg"\n\tpath =\n')
    found = gitsafe.drivers([config])
    assert found["filter"] == {"from-home"} and found["merge"] == {"tabbed"}
    env = gitsafe.environment({"GIT_CONFIG_COUNT": "x"}, None)
    assert env["GIT_CONFIG_KEY_0"] == "core.hooksPath" and int(env["GIT_CONFIG_COUNT"]) == len(gitsafe.FIXED)
