"""Attack class: code planted in the shared git directory, for boss's own git commands to run
(the worker's commit and resets, the ceremony's merges, worktree and landing). Every planted
program appends its name to the marker.

Defences expected: every git command boss and the worker run ignores hooks, core.hooksPath,
fsmonitor, filters, includes, config.worktree and signing programs it did not set itself; the
worker fingerprints the shared git directory around each agent run and fails the worker,
naming what changed, after restoring it; in the sandbox the git directory is read-only.
"""

from __future__ import annotations

import subprocess

import pytest

from attacks.harness import FEATURE_TEST, HONEST, PY, Project, Worker, digest, make_project

HOOKS = (
    "post-checkout post-merge post-commit prepare-commit-msg reference-transaction pre-commit "
    "pre-merge-commit commit-msg post-rewrite post-index-change pre-auto-gc"
)
# Every plant is bash run with $G (the shared git dir), $MARKER and $ATTACK_ROOT set; each planted
# program appends its own name to the marker. `hooks DIR NAME` writes every hook into DIR.
PRELUDE = f"""
hooks() {{
  mkdir -p "$1"
  for h in {HOOKS}; do
    printf '#!/bin/sh\\necho %s-%s >> "%s"\\nexit 0\\n' "$2" "$h" "$MARKER" > "$1/$h"
    chmod +x "$1/$h"
  done
}}
program() {{  # program PATH NAME: a script that appends NAME to the marker, then exits $3
  printf '#!/bin/sh\\necho %s >> "%s"\\ncat >/dev/null 2>&1\\nexit %s\\n' "$2" "$MARKER" "${{3:-0}}" > "$1"
  chmod +x "$1"
}}
"""
PLANTS = {
    "hooks": 'hooks "$G/hooks" hook',
    "hooksPath": 'hooks "$ATTACK_ROOT/evilhooks" hookspath; git config core.hooksPath "$ATTACK_ROOT/evilhooks"',
    "fsmonitor": 'program "$ATTACK_ROOT/fsmon" fsmonitor 1; git config core.fsmonitor "$ATTACK_ROOT/fsmon"',
    "filter-info-attributes": """
        mkdir -p "$G/info"; echo '* filter=evil' >> "$G/info/attributes"
        git config filter.evil.clean "sh -c 'echo filter-clean >> $MARKER; cat'"
        git config filter.evil.smudge "sh -c 'echo filter-smudge >> $MARKER; cat'"
        """,
    "filter-gitattributes": """
        echo '* filter=evil2' > src/.gitattributes
        git config filter.evil2.clean "sh -c 'echo gitattributes-clean >> $MARKER; cat'"
        git config filter.evil2.smudge "sh -c 'echo gitattributes-smudge >> $MARKER; cat'"
        """,
    "include": """
        hooks "$ATTACK_ROOT/inclhooks" include
        printf '[core]\\n\\thooksPath = %s\\n' "$ATTACK_ROOT/inclhooks" > "$ATTACK_ROOT/evil.gitconfig"
        git config include.path "$ATTACK_ROOT/evil.gitconfig"
        """,
    "config.worktree": """
        hooks "$ATTACK_ROOT/wthooks" worktree-config
        git config core.repositoryformatversion 1; git config extensions.worktreeConfig true
        printf '[core]\\n\\thooksPath = %s\\n' "$ATTACK_ROOT/wthooks" > "$G/config.worktree"
        own=$(git rev-parse --path-format=absolute --git-dir)
        [ "$own" = "$G" ] || cp "$G/config.worktree" "$own/config.worktree"
        """,
    "gpg": 'program "$ATTACK_ROOT/gpg" gpg 1; git config gpg.program "$ATTACK_ROOT/gpg"; git config commit.gpgsign true',
    "diff-external": 'program "$ATTACK_ROOT/extdiff" diff-external; git config diff.external "$ATTACK_ROOT/extdiff"',
    "textconv": """
        mkdir -p "$G/info"; echo '* diff=evil3' >> "$G/info/attributes"
        git config diff.evil3.textconv "sh -c 'echo textconv >> $MARKER; cat \\"\\$1\\"' -"
        """,
}
# What the worker's reason must name for each plant: the file or the setting that changed.
NAMED = {
    "hooks": "hooks",
    "hooksPath": "config",
    "fsmonitor": "config",
    "filter-info-attributes": "attributes",
    "filter-gitattributes": "config",
    "include": "config",
    "config.worktree": "config",
    "gpg": "config",
    "diff-external": "config",
    "textconv": "attributes",
}


def plant(kind: str) -> str:
    """Bash, run in a checkout, that plants `kind` in the shared git directory."""
    return f"G=$(git rev-parse --path-format=absolute --git-common-dir)\n{PRELUDE}\n{PLANTS[kind]}\n"


def git_state(p: Project) -> dict[str, str]:
    """What a plant changes in the shared git directory (boss's own files left out)."""
    g = p.git_dir
    files = [g / "config", g / "config.worktree", g / "info" / "attributes", g / "hooks"]
    files += sorted((g / "worktrees").glob("*/config.worktree"))
    return {str(f.relative_to(g)): digest(f) for f in files}


@pytest.mark.parametrize("kind", list(PLANTS))
def test_agent_plant_in_the_git_dir_fails_the_worker_and_never_runs(tmp_path, kind):
    """The agent does the work and plants `kind` in the shared git directory (no sandbox, so the
    write succeeds): the worker ends FAILED naming the change, the git directory is put back,
    and neither the worker's own git commands nor `boss merge` run the planted program."""
    p = make_project(tmp_path, [Worker("W1", HONEST + plant(kind), scope=["^src/"])], sandbox="off")
    before = git_state(p)
    p.run_worker("W1")
    row = p.state("W1")
    assert p.ran() == [], f"planted code ran: {p.ran()}"
    assert row["state"] == "FAILED", row
    assert NAMED[kind] in row["reason"].lower(), row["reason"]
    assert git_state(p) == before
    p.merge()
    assert p.ran() == [], f"planted code ran in boss merge: {p.ran()}"
    assert "src/feature.py" not in p.main_files()


# The diff programs run only where boss prints a patch: test_quarantine_show_never_runs_diff_...
RUN_BY_PIPELINE = [kind for kind in PLANTS if kind not in ("diff-external", "textconv")]


@pytest.mark.parametrize("kind", RUN_BY_PIPELINE)
def test_boss_git_commands_never_run_programs_already_in_the_git_dir(tmp_path, kind):
    """`kind` is already in the shared git directory when the pipeline starts (an earlier,
    unsandboxed run left it; a committed .gitattributes names the filter): an honest worker's
    run and `boss merge`, which merges and lands its work, run none of it."""
    files = {"src/.gitattributes": "* filter=evil2\n"} if kind == "filter-gitattributes" else None
    p = make_project(tmp_path, [Worker("W1", HONEST)], sandbox="off", files=files)
    env = {**p.env(), "ATTACK_ROOT": str(tmp_path)}
    subprocess.run(["bash", "-c", plant(kind)], cwd=p.repo, env=env, check=True)
    p.run_worker("W1")
    assert p.ran() == [], f"planted code ran in the worker: {p.ran()}"
    assert p.state("W1")["state"] == "SUCCESS"
    p.merge()
    assert p.ran() == [], f"planted code ran in boss merge: {p.ran()}"
    assert p.verdicts() == {"W1": "MERGED"}


def test_sandboxed_agent_cannot_write_the_git_dir(tmp_path):
    """The agent plants every kind at once inside the sandbox: the git directory is read-only
    there, so nothing in it changes and nothing planted ever runs."""
    script = HONEST + "".join(plant(kind) for kind in PLANTS)
    p = make_project(tmp_path, [Worker("W1", script)], sandbox="required")
    before = git_state(p)
    p.run_worker("W1")
    assert git_state(p) == before
    p.merge()
    assert p.ran() == [], f"planted code ran: {p.ran()}"


def test_code_run_by_the_integration_test_cannot_plant_for_the_rest_of_the_ceremony(tmp_path):
    """W1's code plants hooks, a hooksPath and a gpg program when the ceremony's integration test
    imports it (only there: the worker's own gates see nothing); W2 is merged after it and the
    result lands. The integration test runs in the sandbox, so the git directory is unchanged
    and no planted hook runs during W2's merge or the landing."""
    planter = f"""
    {HONEST}
    cat >> src/feature.py <<'EOF'
    import os, subprocess
    if "_integration" in os.getcwd() or "_slot" in os.getcwd():
        env = dict(os.environ, MARKER={str(tmp_path / "MARKER")!r}, ATTACK_ROOT={str(tmp_path)!r})
        subprocess.run(["bash", "-c", {plant("hooks") + plant("gpg")!r}], env=env, check=False)
    EOF
    """
    w2 = Worker(
        "W2",
        "printf 'def triple(x):\\n    return 3 * x\\n' > src/other.py\n",
        test=f"{PY} -c 'from src.other import triple; assert triple(1) == 3'",
        depends_on=["W1"],
    )
    p = make_project(
        tmp_path,
        [Worker("W1", planter), w2],
        sandbox="required",
        integration_test=FEATURE_TEST,
    )
    before = git_state(p)
    p.run_worker("W1")
    p.run_worker("W2")
    p.merge()
    assert p.ran() == [], f"planted code ran: {p.ran()}"
    assert git_state(p) == before
    assert "src/other.py" in p.main_files()


def test_quarantine_show_never_runs_diff_programs_of_the_git_dir(tmp_path):
    """An external diff and a textconv driver are in the git directory; a worker's out-of-scope
    change is quarantined and the user runs `boss quarantine show`, which prints its diff: the
    diff is shown without running either program."""
    script = HONEST + "echo more >> README.md\n"
    p = make_project(tmp_path, [Worker("W1", script)], sandbox="off")
    env = {**p.env(), "ATTACK_ROOT": str(tmp_path)}
    for kind in ("diff-external", "textconv"):
        subprocess.run(["bash", "-c", plant(kind)], cwd=p.repo, env=env, check=True)
    p.run_worker("W1")
    assert p.state("W1")["state"] == "SCOPE_VIOLATION"
    p.merge()
    shown = p.boss("quarantine", "show", "W1", "--plan", p.plan)
    assert "README.md" in shown.stdout, shown.stdout + shown.stderr
    assert p.ran() == [], f"planted code ran: {p.ran()}"
