"""Control: the same harness with an honest agent. Every assertion the attacks make holds for
honest work, in both sandbox settings, so an attack test fails only because of its attack (and
the sandbox does not stop honest work from succeeding and landing)."""

from __future__ import annotations

import pytest

from attacks.harness import HONEST, Worker, git, make_project
from attacks.test_git_plants import git_state
from attacks.test_repo_moves import repo_state


@pytest.mark.parametrize("sandbox", ["off", "required"])
def test_honest_work_succeeds_lands_and_changes_nothing_else(tmp_path, sandbox):
    """Two honest workers: both SUCCESS and MERGED; the git directory's config, hooks and
    attributes, the tags and the main checkout are as before; the marker was never written."""
    other = "printf 'def triple(x):\\n    return 3 * x\\n' > src/other.py\n"
    p = make_project(tmp_path, [Worker("W1", HONEST), Worker("W2", other + HONEST)], sandbox=sandbox)
    before_git, before_repo = git_state(p), repo_state(p)
    p.run_workers()
    assert p.state("W1")["state"] == p.state("W2")["state"] == "SUCCESS"
    assert git_state(p) == before_git and repo_state(p) == before_repo
    p.merge()
    assert p.verdicts() == {"W1": "MERGED", "W2": "MERGED"}
    assert {"src/feature.py", "src/other.py"} <= set(p.main_files())
    assert git(p.repo, "status", "--porcelain") == ""
    assert git_state(p) == before_git
    assert p.ran() == []
