"""`boss render`: run_workers.sh, plan.md and CONTEXT.md from the manifest, hand edits kept."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jinja2
import pytest
import yaml
from click.testing import CliRunner
from conftest import git

from boss.cli.main import cli
from boss.core import manifest as mf
from boss.core.config import Config
from boss.core.mdtext import cell, code, fence, mermaid, oneline, scope_words
from boss.core.paths import PlanPaths
from boss.core.templates import make_env, templates_dir
from boss.plan.render import render_plan
from worker.agents.scripted import load_script

SCRIPT = '```agent-script\n- write: {src/auth/a.py: "x = 1\\n"}\n- print: second\n```'


def manifest(repo, **top) -> mf.Manifest:
    raw = {
        "version": 1,
        "plan": "shop",
        "task": "Add a login flow and a settings page.",
        "base": "main",
        "base_commit": git(repo, "rev-parse", "HEAD"),
        "integration_test": "pytest -q",
        "workers": [
            {
                "id": "W1",
                "title": "Auth module",
                "scope": ["^src/auth/", "^tests/test_auth\\.py$"],
                "test": "pytest tests/test_auth.py -q",
                "instructions": f"Implement login().\n\n{SCRIPT}\n",
            },
            {
                "id": "W2",
                "title": "Settings | page",
                "scope": "^src/ui/",
                "depends_on": ["W1"],
                "test": "pytest tests/ui -q",
                "write_test": True,
                "agent": "codex",
            },
            {
                "id": "W3",
                "title": "Everything",
                "scope": "\\.py$",
                "test": "true",
                "instructions": "All of it.",
                "test_timeout": 0,
            },
        ],
        **top,
    }
    return mf.from_dict(raw, "manifest.yaml")


@pytest.fixture
def plan(repo):
    (repo / "src/auth").mkdir(parents=True)
    (repo / "src/auth/login.py").write_text("")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "code")
    m = manifest(repo)
    paths = PlanPaths.of(repo, m.plan)
    mf.save(m, paths.manifest)
    return paths, m


def test_renders_every_file(plan):
    paths, m = plan
    result = render_plan(paths, m, Config(), tracked=git(paths.repo, "ls-files").splitlines())
    assert set(result.written) == {paths.run_script, paths.plan_md, *(paths.context(w.id) for w in m.workers)}
    assert result.kept == [] and result.unchanged == []
    assert paths.run_script.stat().st_mode & 0o777 == 0o755
    base = f"main at {m.base_commit[:12]}"
    assert result.warnings == [
        f"worker W1 field scope: '^tests/test_auth\\\\.py$' matches no file tracked on {base}; "
        "fine if the worker (or one it depends on) creates it, otherwise check the pattern",
        f"worker W2 field scope: '^src/ui/' matches no file tracked on {base}; "
        "fine if the worker (or one it depends on) creates it, otherwise check the pattern",
        "workers W1 and W3 may run at the same time and their scopes overlap (both match src/auth/login.py); "
        "they may conflict at merge: narrow a scope or make one depend on the other",
    ]
    index = json.loads(paths.rendered_index.read_text())
    assert index["version"] == 1 and sorted(index["files"]) == [
        "plan.md", "run_workers.sh", "workers/W1/CONTEXT.md", "workers/W2/CONTEXT.md", "workers/W3/CONTEXT.md"
    ]  # fmt: skip


def test_context_md_says_everything_a_worker_needs(plan):
    paths, m = plan
    render_plan(paths, m, Config())
    w1 = paths.context("W1").read_text()
    assert w1.startswith("# W1: Auth module\n")
    assert f"## Your task\n\nImplement login().\n\n{SCRIPT}\n" in w1
    assert load_script(w1) == [{"write": {"src/auth/a.py": "x = 1\n"}}, {"print": "second"}]
    assert "- `^src/auth/`: everything under `src/auth/`\n" in w1
    assert "- `^tests/test_auth\\.py$`: the file `tests/test_auth.py`\n" in w1
    assert "`BOSS_SCOPE`" in w1 and "SCOPE_VIOLATION" in w1
    assert "```bash\npytest tests/test_auth.py -q\n```" in w1
    assert "**do not edit, skip or weaken the test or its files**" in w1
    assert "You depend on no other worker: your worktree starts from `main` at commit" in w1
    assert "`BOSS_FEEDBACK`" in w1 and "the tail of the test's output" in w1
    assert "**Stay in your scope.**" in w1 and "**Do not loop on one approach.**" in w1
    assert "After 5 failed iterations" in w1 and "after 2 strategies" in w1
    assert "Do not commit, push" in w1
    assert w1.rstrip().endswith("## The plan as a whole\n\nAdd a login flow and a settings page.")
    w2 = paths.context("W2").read_text()
    assert "# W2: Settings | page" in w2 and "## Your task\n\nSettings | page\n" in w2
    assert "Your first run writes this acceptance test, and nothing else" in w2
    assert "- **W1: Auth module** (branch `feat/w1-auth-module`), whose scope is everything under " in w2
    w3 = paths.context("W3").read_text()
    assert "- `\\.py$`: every path ending in `.py`" in w3
    assert "worktree (limit: 600 seconds):" in w1 and "worktree:\n" in w3


def test_plan_md_shows_waves_scopes_tests_overlaps_and_the_graph(plan):
    paths, m = plan
    render_plan(paths, m, Config(), tracked=["src/auth/login.py"])
    text = paths.plan_md.read_text()
    assert text.startswith("# Plan `shop`\n\nAdd a login flow and a settings page.\n")
    assert "| Integration test | `pytest -q` |" in text
    assert (
        "| Workers | 3 in 2 waves |" in text
        and "| Run them | `bash .boss/plans/shop/run_workers.sh` |" in text
    )
    wave1, wave2 = text.split("### Wave 1")[1].split("### Wave 2")
    assert (
        "| W1 | Auth module | `feat/w1-auth-module` | `^src/auth/` (everything under `src/auth/`)<br>"
        in wave1
    )
    assert "| W3 |" in wave1 and "| W2 |" not in wave1
    assert "| W2 | Settings \\| page | `feat/w2-settings-page` |" in wave2
    assert "| W1 | `pytest tests/ui -q` (written by the agent first) | codex |" in wave2
    assert "- **Warning:** workers W1 and W3 may run at the same time" in text
    graph = re.search(r"```mermaid\n(.*?)```", text, re.S).group(1)
    assert graph == (
        'flowchart TD\n  n0["W1: Auth module"]\n  n1["W2: Settings | page"]\n  n2["W3: Everything"]\n  n0 --> n1\n'
    )


def test_run_workers_sh_passes_bash_n_and_shellcheck(plan):
    paths, m = plan
    render_plan(paths, m, Config(jobs=3))
    subprocess.run(["bash", "-n", str(paths.run_script)], check=True)
    res = subprocess.run(["shellcheck", "-s", "bash", str(paths.run_script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
    text = paths.run_script.read_text()
    assert "JOBS=3" in text and "PLAN=shop" in text and "ORDER=(W1 W2 W3)" in text


def test_hand_edits_are_kept_unless_forced(plan, repo):
    paths, _ = plan
    assert CliRunner().invoke(cli, ["render"], catch_exceptions=False).exit_code == 0
    paths.plan_md.write_text(paths.plan_md.read_text() + "\nMy notes.\n")
    paths.context("W2").unlink()
    before = paths.context("W1").stat().st_mtime_ns
    res = CliRunner().invoke(cli, ["render", "shop"], catch_exceptions=False)
    assert res.exit_code == 0
    assert res.stdout == "Rendered plan shop in .boss/plans/shop/: 1 written, 3 unchanged, 1 kept.\n"
    assert res.stderr.splitlines()[-1] == (
        "Warning: kept .boss/plans/shop/plan.md: edited by hand since it was rendered "
        "(`boss render --force` overwrites it)"
    )
    assert paths.plan_md.read_text().endswith("My notes.\n") and paths.context("W2").is_file()
    assert paths.context("W1").stat().st_mtime_ns == before  # unchanged files are not rewritten
    # A changed manifest re-renders what was not edited; the edit is still kept.
    raw = yaml.safe_load(paths.manifest.read_text())
    raw["workers"][0]["title"] = "Auth, renamed"
    paths.manifest.write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(cli, ["render"], catch_exceptions=False)
    assert "Auth, renamed" in paths.context("W1").read_text() and res.stdout.endswith("1 kept.\n")
    res = CliRunner().invoke(cli, ["render", "--force"], catch_exceptions=False)
    assert res.stdout.endswith("0 kept.\n") and "My notes." not in paths.plan_md.read_text()
    assert "Auth, renamed" in paths.plan_md.read_text()


def test_files_without_a_record_are_treated_as_edited(plan):
    paths, m = plan
    render_plan(paths, m, Config())
    paths.rendered_index.unlink()
    paths.plan_md.write_text("someone else's file\n")
    result = render_plan(paths, m, Config())
    assert result.kept == [paths.plan_md] and len(result.unchanged) == 4
    assert render_plan(paths, m, Config(), force=True).written == [paths.plan_md]


def test_render_refuses_an_invalid_manifest(plan):
    paths, _ = plan
    paths.manifest.write_text(
        paths.manifest.read_text().replace("depends_on:\n  - W1", "depends_on:\n  - W7")
    )
    res = CliRunner().invoke(cli, ["render"], catch_exceptions=False)
    assert res.exit_code == 2
    assert (
        res.stderr
        == "Error: .boss/plans/shop/manifest.yaml: worker W2 field depends_on: names no worker W7 (workers: W1, W2, W3)\n"
    )


def test_templates_and_environment():
    assert (templates_dir() / "context.md.j2").is_file()
    env = make_env()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    assert env.from_string("{{ x | shquote }}\n").render(x="a'b $(c)") == "'a'\"'\"'b $(c)'\n"


def test_markdown_filters():
    assert oneline("a\n  b\tc ") == "a b c"
    assert code("pytest -q") == "`pytest -q`"
    assert code("echo `x`") == "`` echo `x` ``"
    assert code("a ``b``\nc") == "```a ``b`` c```"
    assert code("") == "(empty)"
    assert cell("a | b\nc") == "a \\| b c"
    assert fence("x\n```\ny\n", "bash") == "````bash\nx\n```\ny\n````"
    assert fence("plain") == "```\nplain\n```"
    assert mermaid('a "b" <c> #d `e`') == "a #quot;b#quot; #lt;c#gt; #35;d #96;e#96;"
    assert scope_words("^src/") == "everything under `src/`"
    assert scope_words("^src/a") == "every path starting with `src/a`"
    assert scope_words("^src/.*") == "everything under `src/`"
    assert scope_words("^README\\.md$") == "the file `README.md`"
    assert scope_words("^") == "every path"
    assert scope_words("\\.py$") == "every path ending in `.py`"
    assert scope_words("fixtures") == "every path containing `fixtures`"
    assert scope_words("^src/(a|b)/") == "every path the regex `^src/(a|b)/` matches"


def test_help_is_fast_and_loads_no_jinja_yaml_or_git():
    code_ = (
        "import sys\nfrom boss.cli.main import cli\n"
        "try:\n    cli.main(['--help'], prog_name='boss')\nexcept SystemExit:\n    pass\n"
        "for name in ('plan', 'render', 'validate'):\n"
        "    try:\n        cli.main([name, '--help'], prog_name='boss')\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('jinja2', 'yaml', 'git', 'boss.core.manifest', 'boss.plan.render') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code_], capture_output=True, text=True, check=True)
    assert res.stdout.splitlines()[-1] == "[]"
    assert "Write a new plan's manifest and render its files." in res.stdout
    assert "Regenerate run_workers.sh, plan.md and each CONTEXT.md" in res.stdout
    assert "Check a plan's manifest against every rule" in res.stdout
