"""boss.core.gitdir: the shared git directory recorded before agent code runs, and put back after."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import git, make_repo
from worker_helpers import make_plan, worker

from boss.cli.main import cli
from boss.core import gitdir, statelog
from boss.core import status as st
from boss.core.config import load_config
from boss.core.errors import StateError
from boss.core.lock import locked
from worker.lifecycle.run import run_worker


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = make_repo(tmp_path / "repo", {"README.md": "# sample\n", "src/a.txt": "a\n"})
    git(r, "branch", "side")
    git(r, "tag", "v1")
    git(r, "worktree", "add", "-q", "-b", "w1", str(tmp_path / "wt"))
    return r


def snap(repo: Path, **kw) -> gitdir.Snapshot:
    return gitdir.snapshot(repo, free=kw.pop("free", ["refs/heads/w1"]), worktree=repo.parent / "wt", **kw)


def test_nothing_moved_means_no_change_and_a_snapshot_costs_milliseconds(repo: Path) -> None:
    before = snap(repo)
    assert gitdir.restore(before) == []
    start = time.perf_counter()
    for _ in range(10):
        gitdir.restore(snap(repo))
    assert (time.perf_counter() - start) / 10 < 0.25  # one for-each-ref each way, files read directly


def test_config_hooks_and_info_go_back_to_their_bytes(repo: Path) -> None:
    dot = repo / ".git"
    sample = dot / "hooks" / "pre-commit.sample"
    sample_bytes, sample_mode = sample.read_bytes(), sample.stat().st_mode
    config = (dot / "config").read_bytes()
    exclude = (dot / "info" / "exclude").read_bytes()
    before = snap(repo)
    git(repo, "config", "core.fsmonitor", "/tmp/evil")
    (dot / "hooks" / "post-checkout").write_text("#!/bin/sh\necho evil\n")
    (dot / "hooks" / "post-checkout").chmod(0o755)
    (dot / "hooks" / "evil.d").mkdir()
    (dot / "hooks" / "evil.d" / "x").write_text("x")
    sample.write_text("changed")
    sample.chmod(0o777)
    (dot / "info" / "attributes").write_text("* filter=evil\n")
    (dot / "info" / "exclude").write_text("*\n")
    (dot / "config.worktree").write_text("[core]\n\thooksPath = /tmp\n")
    (dot / "worktrees" / "wt" / "config.worktree").write_text("[core]\n\tfsmonitor = /tmp/evil\n")
    changes = gitdir.restore(before)
    assert changes == [
        ".git/config changed",
        ".git/config.worktree added",
        ".git/hooks/evil.d added",
        ".git/hooks/evil.d/x added",
        ".git/hooks/post-checkout added",
        ".git/hooks/pre-commit.sample changed",
        ".git/info/attributes added",
        ".git/info/exclude changed",
        ".git/worktrees/wt/config.worktree added",
    ]
    assert (dot / "config").read_bytes() == config
    assert (dot / "info" / "exclude").read_bytes() == exclude
    assert sample.read_bytes() == sample_bytes and sample.stat().st_mode == sample_mode
    for gone in ("hooks/post-checkout", "hooks/evil.d", "info/attributes", "config.worktree"):
        assert not (dot / gone).exists()
    assert not (dot / "worktrees" / "wt" / "config.worktree").exists()
    assert gitdir.restore(before) == []


def test_a_folder_swapped_for_a_link_and_a_redirected_worktree_are_put_back(
    repo: Path, tmp_path: Path
) -> None:
    dot = repo / ".git"
    hooks = sorted(p.name for p in (dot / "hooks").iterdir())
    wt_git = tmp_path / "wt" / ".git"
    wiring = wt_git.read_text()
    before = snap(repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "post-merge").write_text("evil")
    (dot / "hooks").rename(tmp_path / "old-hooks")
    (dot / "hooks").symlink_to(elsewhere)
    wt_git.write_text(f"gitdir: {tmp_path / 'fake'}\n")
    (dot / "commondir").write_text(str(tmp_path / "fake"))
    changes = gitdir.restore(before)
    assert ".git/hooks changed" in changes and ".git/commondir added" in changes
    assert f"{wt_git} changed" in changes
    assert not (dot / "hooks").is_symlink() and sorted(p.name for p in (dot / "hooks").iterdir()) == hooks
    assert wt_git.read_text() == wiring and not (dot / "commondir").exists()
    assert (elsewhere / "post-merge").exists()  # what the link pointed at is not boss's to remove


def test_refs_and_head_go_back_and_new_refs_go(repo: Path) -> None:
    main, side = git(repo, "rev-parse", "main"), git(repo, "rev-parse", "side")
    before = snap(repo)
    git(repo, "commit", "-q", "--allow-empty", "-m", "evil")  # main moves
    evil = git(repo, "rev-parse", "main")
    git(repo, "tag", "v2")
    git(repo, "update-ref", "refs/replace/" + side, evil)
    git(repo, "update-ref", "-d", "refs/heads/side")
    git(repo, "tag", "-f", "v1", evil)
    git(repo, "symbolic-ref", "HEAD", "refs/heads/elsewhere")
    changes = gitdir.restore(before)
    assert changes == [
        ".git/HEAD changed",
        f"refs/heads/main moved from {main[:10]} to {evil[:10]}",
        f"refs/heads/side deleted (was {side[:10]})",
        f"refs/replace/{side} added at {evil[:10]}",
        f"refs/tags/v1 moved from {main[:10]} to {evil[:10]}",
        f"refs/tags/v2 added at {evil[:10]}",
    ]
    assert git(repo, "rev-parse", "main", "side", "v1") == f"{main}\n{side}\n{main}"
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/replace", "refs/tags/v2") == ""


def test_free_refs_may_move_and_a_pruned_worktree_is_no_change(repo: Path, tmp_path: Path) -> None:
    before = snap(repo, free=["refs/heads/w1", "refs/boss/checkpoints/p/W1/"])
    git(tmp_path / "wt", "commit", "-q", "--allow-empty", "-m", "own work")
    git(repo, "update-ref", "refs/boss/checkpoints/p/W1/1", "HEAD")
    git(repo, "worktree", "remove", "--force", str(tmp_path / "wt"))
    assert gitdir.restore(before) == []
    git(repo, "update-ref", "refs/boss/checkpoints/p/W2/1", "HEAD")  # not free: another prefix
    assert gitdir.restore(before) == [
        "refs/boss/checkpoints/p/W2/1 added at " + git(repo, "rev-parse", "HEAD")[:10]
    ]


def test_a_ref_that_cannot_go_back_says_so(repo: Path) -> None:
    before = snap(repo)
    lock = repo / ".git" / "refs" / "tags" / "v1.lock"
    git(repo, "tag", "-d", "v1")
    lock.write_text("held\n")  # git cannot take the ref's lock: the restore fails, and says so
    changes = gitdir.restore(before)
    assert (
        len(changes) == 1
        and changes[0].startswith("refs/tags/v1 deleted")
        and "could not be put back" in changes[0]
    )


# --- a hostile agent in a real worker run ---


@pytest.fixture
def calc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    r = make_repo(tmp_path / "calc", {"src/calc.py": "def add(a, b):\n    return 0\n", "README.md": "calc\n"})
    monkeypatch.chdir(r)
    # The layer under test is the one without a sandbox (inside one, the git directory is
    # read-only and these changes cannot happen: tests/attacks/test_repo_moves.py).
    monkeypatch.setenv("BOSS_SANDBOX", "off")
    return r


HOSTILE = (
    'git -C "$BOSS_REPO" update-ref refs/heads/main "$(git commit-tree -m evil HEAD^{tree})"; '
    'git -C "$BOSS_REPO" tag planted; '
    'git -C "$BOSS_REPO" update-ref refs/evil/x HEAD; '
    'git -C "$BOSS_REPO" config core.fsmonitor "$BOSS_REPO/../fsmon"; '
    'printf "#!/bin/sh\\ntouch $BOSS_REPO/../hooked\\n" > "$BOSS_REPO/.git/hooks/post-commit"; '
    'chmod +x "$BOSS_REPO/.git/hooks/post-commit"; '
    "git update-ref refs/heads/$(git symbolic-ref --short HEAD) HEAD"  # its own branch: free
)


def test_a_hostile_agent_fails_its_worker_naming_each_change_and_all_is_put_back(calc: Path) -> None:
    main = git(calc, "rev-parse", "main")
    config = (calc / ".git" / "config").read_bytes()
    w = worker("W1", steps=[{"write": {"src/done.txt": "x"}, "run": HOSTILE}])
    paths, m = make_plan(calc, [w])
    assert run_worker(paths, m, load_config(calc), "W1") == st.FAILED
    reason = st.read(paths.status("W1")).reason
    assert reason.startswith("the agent changed the repository's git directory, which boss put back: ")
    for named in (".git/config changed", ".git/hooks/post-commit added", "refs/heads/main moved from ",
                  "refs/tags/planted added at ", "refs/evil/x added at "):  # fmt: skip
        assert named in reason
    assert "refs/heads/feat" not in reason
    assert git(calc, "rev-parse", "main") == main
    assert git(calc, "for-each-ref", "--format=%(refname)", "refs/tags", "refs/evil") == ""
    assert (calc / ".git" / "config").read_bytes() == config
    assert not (calc / ".git" / "hooks" / "post-commit").exists() and not (calc.parent / "hooked").exists()
    actions = [e.action for e in statelog.read(paths.log) if e.worker == "W1"]
    assert "gitdir" in actions and actions[-1] == "gitdir" and "commit" not in actions
    assert git(calc, "rev-parse", m.workers[0].branch) == main  # nothing of the run committed
    assert (paths.worktree("W1") / "src/done.txt").exists()  # left for inspection


def test_a_test_that_plants_a_hook_fails_the_worker_too(calc: Path) -> None:
    plant = 'echo "#!/bin/sh" > "$BOSS_REPO/.git/hooks/pre-commit"; test -f src/done.txt'
    paths, m = make_plan(calc, [worker("W1", test=plant)])
    assert run_worker(paths, m, load_config(calc), "W1") == st.FAILED
    reason = st.read(paths.status("W1")).reason
    assert (
        reason.startswith("the test changed the repository's git directory")
        and ".git/hooks/pre-commit added" in reason
    )
    assert not (calc / ".git" / "hooks" / "pre-commit").exists()


def test_an_agent_that_commits_on_its_own_branch_is_no_tampering(calc: Path) -> None:
    own = {"write": {"src/done.txt": "x"}, "run": "git add -A && git commit -qm 'agent commit'"}
    paths, m = make_plan(calc, [worker("W1", steps=[own])])
    assert run_worker(paths, m, load_config(calc), "W1") == st.SUCCESS
    assert os.path.exists(paths.worktree("W1") / "src/done.txt")


def test_a_boss_merge_running_meanwhile_may_move_the_base(calc: Path) -> None:
    land = 'git -C "$BOSS_REPO" update-ref refs/heads/main "$(git commit-tree -m landed HEAD^{tree})"'
    paths, m = make_plan(calc, [worker("W1", steps=[{"write": {"src/done.txt": "x"}, "run": land}])])
    with locked(paths.merge_dir / "merge.lock", 0, "busy"):  # as the ceremony holds it
        assert run_worker(paths, m, load_config(calc), "W1") == st.SUCCESS
    assert git(calc, "log", "-1", "--format=%s", "main") == "landed"


def test_a_planner_that_tags_and_plants_a_hook_is_refused_and_put_back(calc: Path) -> None:
    evil = 'git tag planted && touch "$(git rev-parse --git-common-dir)/hooks/post-merge" && echo done'
    (calc / ".boss").mkdir()
    (calc / ".boss" / "config.yaml").write_text(yaml.safe_dump({"agents": {"evil": {"command": evil}}}))
    res = CliRunner().invoke(cli, ["plan", "--agent", "evil", "Add a login flow"], catch_exceptions=False)
    assert res.exit_code == 1
    assert "Error: planner 'evil' changed the repository's git directory, which boss put back: " in res.stderr
    assert ".git/hooks/post-merge added" in res.stderr and "refs/tags/planted added at " in res.stderr
    assert git(calc, "tag") == "" and not (calc / ".git" / "hooks" / "post-merge").exists()


def test_links_permissions_and_symbolic_refs_go_back_and_a_stubborn_file_says_so(
    repo: Path, tmp_path: Path
) -> None:
    dot = repo / ".git"
    (dot / "hooks" / "linked").symlink_to("pre-commit.sample")
    main = git(repo, "rev-parse", "main")
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/heads/main")
    before = snap(repo)
    (dot / "hooks" / "linked").unlink()
    (dot / "hooks" / "linked").symlink_to(tmp_path / "evil")
    (dot / "info").chmod(0o700)
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/heads/side")
    changes = gitdir.restore(before)
    assert changes == [
        ".git/hooks/linked changed",
        ".git/info changed",
        "refs/remotes/origin/HEAD now points to refs/heads/side (was refs/heads/main)",
    ]
    assert os.readlink(dot / "hooks" / "linked") == "pre-commit.sample"
    assert (dot / "info").stat().st_mode & 0o777 == before.files[dot / "info"][2]
    assert git(repo, "symbolic-ref", "refs/remotes/origin/HEAD") == "refs/heads/main" and main


def test_a_file_that_cannot_be_put_back_says_so(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snap(repo)
    (repo / ".git" / "hooks" / "x").write_text("x")

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(gitdir, "_remove", refuse)
    assert gitdir.restore(before) == [".git/hooks/x added (could not be put back: Permission denied)"]


def test_outside_a_repository_there_is_nothing_to_watch(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("not a gitfile\n")  # where git would stop looking too
    with pytest.raises(StateError, match="not inside a git repository"):
        gitdir.snapshot(tmp_path)
