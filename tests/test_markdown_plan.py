"""The Markdown task file (SPEC section 3) and `boss plan --from FILE.md`."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from click.testing import CliRunner
from conftest import git

from boss.cli.main import cli
from boss.core import manifest as mf
from boss.core.errors import ManifestError
from boss.core.manifest import SETTING_DEFAULTS
from boss.plan.markdown_plan import TOP_FIELDS, parse
from worker.agents.scripted import load_script

TOP_ALLOWED = (*TOP_FIELDS, *SETTING_DEFAULTS)

SPEC_EXAMPLE = """\
# Auth and UI
Add a login flow and a settings page.

- integration test: pytest -q
- base: main

## W1: Auth module
- scope: ^src/auth/, ^tests/auth/
- test: pytest tests/auth -q

Implement login() and logout() in src/auth/ ...

## W2: Settings page
- scope: ^src/ui/
- depends on: W1
- test: pytest tests/ui -q

Build the settings page ...
"""


def md(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def errors(text: str) -> list[str]:
    with pytest.raises(ManifestError) as e:
        parse(md(text), "plan.md")
    return e.value.problems


def test_the_spec_example():
    raw = parse(SPEC_EXAMPLE, "plan.md")
    assert raw == {
        "version": 1,
        "plan": "auth-and-ui",
        "task": "Add a login flow and a settings page.",
        "integration_test": "pytest -q",
        "base": "main",
        "workers": [
            {
                "id": "W1",
                "title": "Auth module",
                "scope": ["^src/auth/", "^tests/auth/"],
                "test": "pytest tests/auth -q",
                "instructions": "Implement login() and logout() in src/auth/ ...",
            },
            {
                "id": "W2",
                "title": "Settings page",
                "scope": ["^src/ui/"],
                "depends_on": ["W1"],
                "test": "pytest tests/ui -q",
                "instructions": "Build the settings page ...",
            },
        ],
    }
    m = mf.from_dict(raw, "plan.md")
    assert [w.branch for w in m.workers] == ["feat/w1-auth-module", "feat/w2-settings-page"]


def test_keys_values_lists_and_defaults():
    raw = parse(
        md("""
        # Big refactor
        - Plan: refactor-2
        - Agent: codex
        - max-iterations: 3
        - copy: `.env`, config/local.yaml
        - Setup: `npm ci`

        The task, in two paragraphs.

        Second paragraph.

        ## W1: One
        - Scope:
          - `^src/a{1,2}/`
          - ^lib/
        - Depends_On: W2 W3
        - write test: yes
        - agent timeout: 60
        - test: `` grep -q `x` f ``

        ## W2: Two
        - scope: `^x/(a, b)/`, ^y/
        - depends-on: W3,W4
        - test: true
        - write_test: maybe
        """),
        "plan.md",
    )
    assert raw["plan"] == "refactor-2"
    assert raw["task"] == "The task, in two paragraphs.\n\nSecond paragraph."
    assert raw["defaults"] == {"agent": "codex", "max_iterations": 3}
    assert raw["copy"] == [".env", "config/local.yaml"] and raw["setup"] == "npm ci"
    w1, w2 = raw["workers"]
    assert w1["scope"] == ["^src/a{1,2}/", "^lib/"]
    assert w1["depends_on"] == ["W2", "W3"]
    assert w1["write_test"] is True and w1["agent_timeout"] == 60
    assert w1["test"] == "grep -q `x` f"
    assert w1["instructions"] == ""
    assert w2["scope"] == ["^x/(a, b)/", "^y/"] and w2["depends_on"] == ["W3", "W4"]
    assert w2["write_test"] == "maybe"  # left for validation to reject with the file's name


def test_a_list_after_a_blank_line_starts_the_instructions_unless_it_sets_fields():
    raw = parse(
        md("""
        # Plan
        ## W1: Lists
        - scope: ^src/

        - test: true

        - Add login()
        - note: keep it short
        """),
        "plan.md",
    )
    (w1,) = raw["workers"]
    assert w1["test"] == "true"
    assert w1["instructions"] == "- Add login()\n- note: keep it short"


def test_instructions_are_verbatim_and_headings_in_fences_are_text():
    text = md("""
    # Plan
    ## W1: Scripted
    - scope: ^src/
    - test: test -f src/x

    Do it:

    - a list in the instructions
    - note: this is not a field

    ```agent-script
    # a comment, not a heading
    - write: {src/x: "1"}
    ```

    ~~~bash
    ## not a worker either
    ~~~
    ### A sub-heading stays
    """)
    raw = parse(text, "plan.md")
    (w1,) = raw["workers"]
    assert w1["instructions"].startswith(
        "Do it:\n\n- a list in the instructions\n- note: this is not a field\n"
    )
    assert "## not a worker either" in w1["instructions"]
    assert w1["instructions"].endswith("### A sub-heading stays")
    assert load_script(w1["instructions"]) == [{"write": {"src/x": "1"}}]
    assert raw["task"] == "Plan"  # no task text: the title is the task


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Just text\n", ["plan.md:1: plan: text before the plan's `# Title` heading",
                         "plan.md:1: plan: no `# Title` heading: the first `# ` heading names the plan"]),
        ("# A\n# B\n## W1: x\n- scope: ^a/\n- test: t\n",
         ["plan.md:2: plan: a second `# ` heading; a plan has one `# Title`"]),
        ("## W1: x\n# A\n## W2: y\n- scope: ^a/\n- test: t\n",
         ["plan.md:1: plan: a worker (`## `) before the plan's `# Title` heading"]),
        ("# A\n## W1 the title\n", ["plan.md:2: worker 'W1 the title': heading must be `## ID: title`"]),
        ("# A\ntext\n", ["plan.md:1: plan field workers: no workers: add a `## ID: title` section per worker"]),
        ("# A\n## W1: x\n- scope: ^a/\n- scpoe: ^b/\n- test: t\n",
         ["plan.md:4: worker W1 field scpoe: unknown field (did you mean scope? allowed: branch, scope, depends_on, test, "
          "instructions, write_test, group, agent, max_iterations, max_strategies, agent_timeout, test_timeout, "
          "stall_timeout, test_network, rate_limit_timeout, max_cost_usd, max_tokens, max_minutes); write the list as `- key: value`, and start free text with a sentence, not a list"]),
        ("# A\n## W1: x\n- scope: ^a/\n- scope: ^b/\n- test: t\n", ["plan.md:4: worker W1 field scope: given twice"]),
        ("# A\n- base: x\n- base: y\n## W1: x\n- scope: ^a/\n- test: t\n", ["plan.md:3: plan field base: given twice"]),
        ("# A\n## W1: x\n- instructions: do\n- scope: ^a/\n- test: t\n\nalso text\n",
         ["plan.md:2: worker W1 field instructions: given both as a field and as text"]),
    ],
)  # fmt: skip
def test_markdown_errors_name_file_line_worker_and_field(text, expected):
    assert errors(text) == expected


def test_validation_problems_name_the_markdown_file(repo):
    (repo / "plan.md").write_text("# A\n## W1: x\n- scope: ^a/(\n- test: t\n")
    res = CliRunner().invoke(cli, ["plan", "--from", "plan.md"], catch_exceptions=False)
    assert res.exit_code == 2
    assert res.stderr.startswith("Error: plan.md: worker W1 field scope: invalid regex '^a/('")
    res = CliRunner().invoke(cli, ["plan", "--from", "plan.md", "--plan", "x"])
    assert res.exit_code == 2
    (repo / "bad.md").write_text("# A\n## W1: x\n- scpoe: ^a/\n- test: t\n")
    res = CliRunner().invoke(cli, ["plan", "--from", "bad.md"], catch_exceptions=False)
    assert res.exit_code == 2
    assert res.stderr.splitlines()[0].startswith("Error: bad.md:3: worker W1 field scpoe: unknown field")
    assert not (repo / ".boss").exists()


def test_boss_plan_from_markdown_writes_the_manifest_and_renders(repo):
    (repo / "plan.md").write_text(SPEC_EXAMPLE)
    res = CliRunner().invoke(cli, ["plan", "--from", "plan.md"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    root = repo / ".boss/plans/auth-and-ui"
    data = yaml.safe_load((root / "manifest.yaml").read_text())
    assert data["base"] == "main" and data["base_commit"] == git(repo, "rev-parse", "HEAD")
    assert data["integration_test"] == "pytest -q"
    assert (root / "plan.md").is_file() and (root / "workers/W2/CONTEXT.md").is_file()
    assert (root / "run_workers.sh").stat().st_mode & 0o777 == 0o755
    exclude = (repo / ".git/info/exclude").read_text().splitlines()
    assert ".boss/" in exclude and ".worktrees/" in exclude
    assert res.stdout.splitlines()[-1] == (
        "Next: read .boss/plans/auth-and-ui/plan.md, then run: bash .boss/plans/auth-and-ui/run_workers.sh"
    )
    # The same plan again is refused; --force replaces it; --plan makes another.
    again = CliRunner().invoke(cli, ["plan", "--from", "plan.md"], catch_exceptions=False)
    assert again.exit_code == 2
    assert "Error: .boss/plans/auth-and-ui/manifest.yaml: plan 'auth-and-ui' already exists" in again.stderr
    assert CliRunner().invoke(cli, ["plan", "--from", "plan.md", "--force"]).exit_code == 0
    res = CliRunner().invoke(
        cli, ["plan", "--from", "plan.md", "--plan", "second", "--integration-test", "make check"]
    )
    assert res.exit_code == 0, res.output
    assert (
        yaml.safe_load((repo / ".boss/plans/second/manifest.yaml").read_text())["integration_test"]
        == "make check"
    )
    assert (repo / ".git/info/exclude").read_text().count(".boss/") == 1


def test_base_comes_from_the_option_then_the_file_then_the_current_branch(repo):
    git(repo, "branch", "dev")
    (repo / "plan.md").write_text(SPEC_EXAMPLE.replace("- base: main\n", "- base: dev\n"))
    assert CliRunner().invoke(cli, ["plan", "--from", "plan.md"]).exit_code == 0
    assert yaml.safe_load((repo / ".boss/plans/auth-and-ui/manifest.yaml").read_text())["base"] == "dev"
    assert (
        CliRunner().invoke(cli, ["plan", "--from", "plan.md", "--base", "main", "--plan", "b"]).exit_code == 0
    )
    assert yaml.safe_load((repo / ".boss/plans/b/manifest.yaml").read_text())["base"] == "main"
    (repo / "plan.md").write_text(SPEC_EXAMPLE.replace("- base: main\n", "- base: nope\n"))
    res = CliRunner().invoke(cli, ["plan", "--from", "plan.md", "--plan", "c"])
    assert res.exit_code == 2
    assert res.stderr.strip().endswith(
        "base branch 'nope' (field base of plan.md) does not exist (branches: dev, main); name an existing branch"
    )


def test_unreadable_markdown_file(repo):
    res = CliRunner().invoke(cli, ["plan", "--from", "missing.md"])
    assert res.exit_code == 2
    assert res.stderr == "Error: missing.md: cannot read: No such file or directory\n"


def test_a_misspelt_first_plan_field_is_an_error_not_task_text():
    text = md("""
    # Alpha
    Do alpha.

    - integraton test: pytest -q

    ## W1: first
    - scope: ^src/
    - test: false
    """)
    with pytest.raises(ManifestError) as e:
        parse(text, "plan.md")
    assert e.value.problems == [
        "plan.md:4: plan field integraton_test: unknown field (did you mean integration_test? allowed: "
        + ", ".join(TOP_ALLOWED)
        + "); write the list as `- key: value`, and start free text with a sentence, not a list"
    ]


def test_a_misspelt_worker_field_after_a_blank_line_is_an_error_not_instructions():
    text = md("""
    # Alpha
    ## W1: first
    - scope: ^src/
    - test: false

    - depnds on: W2

    Work on src.

    ## W2: second
    - scope: ^b/
    - test: false

    - note: instructions may start with a list
    - max iterations are not a field here, just words
    """)
    with pytest.raises(ManifestError) as e:
        parse(text, "plan.md")
    (problem,) = e.value.problems
    assert problem.startswith("plan.md:6: worker W1 field depnds_on: unknown field (did you mean depends_on?")
    text = text.replace("- depnds on: W2", "- depends on: W2")
    w1, w2 = parse(text, "plan.md")["workers"]
    assert w1["depends_on"] == ["W2"] and w1["instructions"] == "Work on src."
    assert w2["instructions"].startswith("- note: instructions may start with a list")
