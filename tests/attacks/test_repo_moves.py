"""Attack class: the agent changes the repository itself: moves `main`, creates a tag, changes
the repository's config.

Defence expected: the worker fingerprints the shared git directory around each agent run; a
change is restored (a ref or tag the agent made is removed) and reported, and the worker ends
FAILED naming it. In the sandbox the git directory is read-only, so nothing changes at all.
"""

from __future__ import annotations

import pytest

from attacks.harness import EVIL_COMMIT, HONEST, Project, Worker, digest, git, make_project

MOVES = {
    "main": EVIL_COMMIT + 'git update-ref refs/heads/main "$(evil_commit src/planted.py planted)"\n',
    "tag": "git tag evil-tag HEAD\n",
    "config": "git config remote.origin.url https://evil.invalid/x.git\n",
}
NAMED = {"main": "main", "tag": "evil-tag", "config": "config"}


def repo_state(p: Project) -> dict[str, str]:
    """The refs other than boss's own and the worker branches, and the config's bytes."""
    refs = git(p.repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/main", "refs/tags")
    return {"refs": refs, "config": digest(p.git_dir / "config")}


@pytest.mark.parametrize("move", list(MOVES))
def test_a_repository_change_by_the_agent_is_restored_and_reported(tmp_path, move):
    """The agent does the work and `move`s the repository (no sandbox, so git lets it): after the
    run, main, the tags and the config are as before, and the worker is FAILED naming it."""
    p = make_project(tmp_path, [Worker("W1", HONEST + MOVES[move])], sandbox="off")
    before = repo_state(p)
    p.run_worker("W1")
    assert repo_state(p) == before
    row = p.state("W1")
    assert row["state"] == "FAILED", row
    assert NAMED[move] in row["reason"], row["reason"]


def test_a_sandboxed_agent_cannot_change_the_repository(tmp_path):
    """The agent tries every move at once inside the sandbox: nothing changes."""
    p = make_project(tmp_path, [Worker("W1", HONEST + "".join(MOVES.values()))], sandbox="required")
    before = repo_state(p)
    p.run_worker("W1")
    assert repo_state(p) == before
