"""`boss plan --agent` (a scripted planner answers wrongly, then rightly), `boss plan --split`,
the planner's prompt and repository summary, and the plan command's refusals."""

from __future__ import annotations

import re
import shlex
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import git, make_repo, write_files

from boss.cli.main import cli
from boss.core import manifest as mf
from boss.core.errors import ManifestError
from boss.plan.new_plan import glob_regex, split_raw
from boss.plan.planner import build_prompt, check_answer, extract_yaml
from boss.plan.repo_summary import detect_test_command, readme_excerpt, summarize

PLANNER = Path(__file__).parent / "planners" / "scripted_planner.py"


@pytest.fixture
def repo(tmp_path, monkeypatch):
    r = make_repo(
        tmp_path / "repo",
        {
            "README.md": "# Shop\nA small web shop.\n",
            "pyproject.toml": "[project]\nname = 'shop'\n",
            "src/auth/__init__.py": "",
            "src/ui/__init__.py": "",
            "tests/test_smoke.py": "def test_ok():\n    pass\n",
        },
    )
    monkeypatch.chdir(r)
    # The scripted planner counts its attempts in a file of the test's, outside any sandbox;
    # tests/test_sandbox.py shows the planner's sandbox.
    monkeypatch.setenv("BOSS_SANDBOX", "off")
    return r


def configure(repo: Path, mode: str, tmp_path: Path, timeout: int = 60, python: str = "") -> Path:
    state = tmp_path / "planner-state"
    state.mkdir(exist_ok=True)
    command = f"{python or shlex.quote(sys.executable)} {shlex.quote(str(PLANNER))} {mode}"
    config = {
        "agents": {"fixer": {"command": command, "env": {"PLANNER_STATE": str(state / "count")}}},
        "planner_timeout": timeout,
    }
    write_files(repo, {".boss/config.yaml": yaml.safe_dump(config)})
    return state


def plan(*args):
    return CliRunner().invoke(cli, ["plan", *args], catch_exceptions=False)


def test_a_wrong_answer_is_sent_back_with_its_errors_then_the_right_one_is_kept(repo, tmp_path):
    state = configure(repo, "wrong-then-right", tmp_path)
    res = plan("--agent", "fixer", "Add a login flow")
    assert res.exit_code == 0, res.output
    assert (state / "count").read_text() == "2"
    second = (state / "prompt-2.md").read_text()
    assert "## Your previous answer was not valid" in second and "This is attempt 2 of 3." in second
    assert "- planner answer 1: field colour: unknown key" in second
    assert "planner answer 1: worker W1 field scope: invalid regex '^src/auth/('" in second
    assert "dependency cycle W1 -> W2 -> W1" in second
    assert "colour: red" in second  # the previous answer itself
    m = mf.load(repo / ".boss/plans/login/manifest.yaml")
    assert m.base == "main" and m.base_commit == git(repo, "rev-parse", "HEAD")
    assert m.defaults["agent"] == "fixer"  # workers use the planning profile unless it says otherwise
    assert [w.id for w in m.workers] == ["W1", "W2"] and m.workers[0].write_test
    assert (repo / ".boss/plans/login/workers/W2/CONTEXT.md").is_file()
    # The planner ran in a throwaway worktree of the base commit, now gone.
    cwd = Path((state / "cwd-1").read_text())
    assert cwd != repo and cwd.name == "worktree" and not cwd.exists()
    assert not (repo / "planted-by-planner.txt").exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "status", "--porcelain") == ""


def test_the_first_prompt_has_task_files_test_command_schema_and_example(repo, tmp_path):
    state = configure(repo, "wrong-then-right", tmp_path)
    assert plan("--agent", "fixer", "Add a login flow", "--plan", "mine").exit_code == 0
    first = (state / "prompt-1.md").read_text()
    assert "## The task\n\nAdd a login flow\n" in first
    assert "5 tracked files:\nREADME.md\npyproject.toml\nsrc/auth/__init__.py" in first
    assert "A small web shop." in first
    assert "Its test command appears to be: `python -m pytest -q`." in first
    assert '"$schema": "https://json-schema.org/draft/2020-12/schema"' in first
    assert "Your previous answer" not in first
    example = re.search(r"An example:\n\n```yaml\n(.*?)```", first, re.S).group(1)
    raw = {**yaml.safe_load(example), "base": "main"}
    assert len(mf.from_dict(raw, "example").workers) == 2
    assert (repo / ".boss/plans/mine/manifest.yaml").is_file()


def test_the_planner_gets_boss_python_as_a_worker_does(repo, tmp_path):
    # The project's planner command runs Python as `"$BOSS_PYTHON"`: unset, bash would run "" (exit 127).
    configure(repo, "bare", tmp_path, python='"$BOSS_PYTHON"')
    res = plan("--agent", "fixer", "Add a login flow")
    assert res.exit_code == 0, res.output
    assert [w.id for w in mf.load(repo / ".boss/plans/login/manifest.yaml").workers] == ["W1", "W2"]


def test_three_wrong_answers_give_a_clear_error_and_keep_the_last_one(repo, tmp_path):
    state = configure(repo, "always-wrong", tmp_path)
    res = plan("--agent", "fixer", "Add a login flow")
    assert res.exit_code == 1
    assert (state / "count").read_text() == "3"
    line = res.stderr.splitlines()[-1]
    assert line.startswith(
        "Error: planner 'fixer' gave no valid manifest in 3 attempts; its last answer is kept in "
    )
    kept = repo / ".boss/planner/last-output.txt"
    assert str(kept.relative_to(repo)) in line and "field colour: unknown key" in line
    assert "Here is the manifest (attempt 3)" in kept.read_text()
    assert not (repo / ".boss/plans").exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_a_planner_that_hangs_is_stopped_at_the_timeout(repo, tmp_path):
    configure(repo, "sleep", tmp_path, timeout=1)
    start = time.monotonic()
    res = plan("--agent", "fixer", "Add a login flow")
    assert time.monotonic() - start < 15
    assert res.exit_code == 1
    assert "Error: planner 'fixer' timed out after 1s (planner_timeout in .boss/config.yaml)" in res.stderr
    assert "thinking about the task" in (repo / ".boss/planner/last-output.txt").read_text()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_a_planner_that_fails_is_reported_with_its_exit_code(repo, tmp_path):
    configure(repo, "crash", tmp_path)
    res = plan("--agent", "fixer", "Add a login flow")
    assert res.exit_code == 1
    assert (
        "Error: planner 'fixer' exited with code 3; its output is kept in .boss/planner/last-output.txt"
        in res.stderr
    )


def test_an_unfenced_answer_is_read_whole_and_an_unknown_profile_is_bad_input(repo, tmp_path):
    state = configure(repo, "bare", tmp_path)
    assert plan("--agent", "fixer", "Add a login flow").exit_code == 0
    assert (state / "count").read_text() == "1"
    res = plan("--agent", "nobody", "Add a login flow")
    assert res.exit_code == 2
    assert "agent 'nobody' is not defined" in res.stderr


def test_extract_yaml_and_check_answer():
    assert extract_yaml("a\n```yaml\nx: 1\n```\nb\n```yml\ny: 2\n```\n") == "y: 2\n"
    assert extract_yaml("~~~yaml\nz: 3\n~~~\n") == "z: 3\n"
    assert extract_yaml("plain: text\n") == "plain: text\n"

    def finalize(raw, source):
        return mf.from_dict({**raw, "base": "main"}, source)

    with pytest.raises(ManifestError, match=r"answer: line 1 invalid YAML"):
        check_answer("[unclosed", "answer", finalize)
    with pytest.raises(ManifestError, match=r"answer: top level: the answer is not a YAML mapping"):
        check_answer("just words", "answer", finalize)


def test_build_prompt_lists_earlier_problems(repo):
    text = build_prompt("Task X", repo, "0" * 40, 3, ["m: worker W1 field scope:\nbad"], "old answer")
    assert "This is attempt 3 of 3." in text and "- m: worker W1 field scope: bad\n" in text
    assert "```text\nold answer\n```" in text


def test_summary_fits_its_budget_and_collapses_deep_folders():
    files = ["README.md", *(f"src/pkg/mod{i}/file{j}.py" for i in range(50) for j in range(40))]
    assert summarize(["a.py", "b/c.py"]) == "2 tracked files:\na.py\nb/c.py"
    assert summarize([]) == "0 tracked files."
    text = summarize(files, budget=2000)
    assert len(text) < 2100
    assert "src/pkg/mod7/ (40 files)" in text and "README.md" in text
    tiny = summarize(files, budget=30)
    assert tiny.startswith("2001 tracked files") and len(tiny.splitlines()) < 4
    wide = [f"d{i}/f.py" for i in range(2000)]
    assert "entries left out" in summarize(wide, budget=500)


def test_detect_test_command_and_readme():
    def reader(files):
        return lambda rel: files.get(rel)

    assert detect_test_command(["Makefile"], reader({"Makefile": "all:\ntest: build\n"})) == "make test"
    assert detect_test_command(["src/test_a.py"], reader({})) == "python -m pytest -q"
    pkg = '{"scripts": {"test": "jest"}}'
    assert detect_test_command(["package.json"], reader({"package.json": pkg})) == "npm test"
    assert detect_test_command(["package.json"], reader({"package.json": "{"})) == ""
    assert detect_test_command(["Cargo.toml"], reader({})) == "cargo test"
    assert detect_test_command(["go.mod"], reader({})) == "go test ./..."
    assert detect_test_command(["main.c"], reader({})) == ""
    long = "x" * 3000
    assert readme_excerpt(["docs/README.md", "Readme.rst"], reader({"Readme.rst": long})).endswith("\n[...]")
    assert readme_excerpt(["main.c"], reader({})) == ""


def test_split_makes_one_worker_per_matching_folder(repo):
    write_files(repo, {"packages/api/a.py": "", "packages/web app/b.js": "", "packages/web app/sub/c": ""})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "packages")
    res = plan("--split", "packages/*", "--test", "make -C {dir} test", "Bump the logger")
    assert res.exit_code == 0, res.output
    m = mf.load(repo / ".boss/plans/bump-the-logger/manifest.yaml")
    assert [(w.id, w.title, w.scope, w.test) for w in m.workers] == [
        ("W1", "packages/api", ("^packages/api/",), "make -C packages/api test"),
        ("W2", "packages/web app", ("^packages/web\\ app/",), "make -C 'packages/web app' test"),
    ]
    assert m.workers[0].instructions.startswith("Bump the logger\n\nDo this in `packages/api/` only")
    assert m.task == "Bump the logger" and len(m.waves()) == 1


def test_split_with_agent_sets_every_split_workers_agent_and_asks_nothing(repo, tmp_path):
    state = configure(repo, "crash", tmp_path)  # a planner that fails if it is ever asked
    res = plan("--split", "src/*", "--test", "pytest {dir}", "--agent", "fixer", "Tidy")
    assert res.exit_code == 0, res.output
    assert "Asking fixer" not in res.output and not (state / "count").exists()
    m = mf.load(repo / ".boss/plans/tidy/manifest.yaml")
    assert m.defaults["agent"] == "fixer"
    assert [(w.id, m.settings(w).agent) for w in m.workers] == [("W1", "fixer"), ("W2", "fixer")]
    assert "fixer" in (repo / ".boss/plans/tidy/plan.md").read_text()


def test_split_globs_and_refusals():
    files = ["a/b/c/d.txt", "a/x/y.txt", "top.txt"]
    assert glob_regex("a/*").fullmatch("a/b") and not glob_regex("a/*").fullmatch("a/b/c")
    assert glob_regex("a/**").fullmatch("a/b/c") and glob_regex("**/c").fullmatch("a/b/c")
    assert glob_regex("a/[!x]").fullmatch("a/b") and not glob_regex("a/[!x]").fullmatch("a/x")
    assert glob_regex("a/?/").fullmatch("a/b")
    raw = split_raw(files, "a/**", "T", "t {dir}")
    assert [w["title"] for w in raw["workers"]] == ["a/b", "a/b/c", "a/x"]
    with pytest.raises(Exception, match=r"--split needs --test CMD"):
        split_raw(files, "a/*", "T", "")
    with pytest.raises(Exception, match=r"--split 'z/\*': no tracked folder matches"):
        split_raw(files, "z/*", "T", "t")
    ids = [w["id"] for w in split_raw([f"p{i}/f" for i in range(12)], "p*", "T", "t")["workers"]]
    assert ids[0] == "W01" and ids[-1] == "W12"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --from FILE.md, --agent NAME"),
        (["--agent", "x", "--from", "p.md"], "give exactly one of"),
        (
            ["--agent", "x", "--split", "src/*", "--test", "t", "T"],
            "boss plan --agent: worker W1 field agent: no agent profile 'x' (known: ",
        ),
        (["--agent", "x"], "boss plan --agent: the TASK argument is missing"),
        (["--from", "p.md", "T"], "the task comes from the Markdown file; drop the TASK argument"),
        (["--agent", "x", "--test", "t", "T"], "boss plan --test: only for --split"),
        (["--split", "*", "T"], "--split needs --test CMD"),
        (
            ["--split", "src/*", "--test", "t", "--base", "nope", "T"],
            "base branch 'nope' (--base) does not exist",
        ),
        (
            ["--split", "src/*", "--test", "t", "--base", "a..b", "T"],
            "is not a valid branch name: it contains '..'",
        ),
    ],
)
def test_plan_refuses_bad_usage_with_exit_2(repo, args, message):
    res = plan(*args)
    assert res.exit_code == 2
    assert res.stderr.startswith("Error: ") and message in res.stderr


def test_plan_refuses_outside_git_without_commits_and_on_a_detached_head(tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    res = plan("--split", "*", "--test", "t", "T")
    assert res.exit_code == 2 and "not inside a git repository" in res.stderr
    empty = tmp_path / "empty"
    git(tmp_path, "init", "-q", "-b", "main", str(empty))
    monkeypatch.chdir(empty)
    res = plan("--split", "*", "--test", "t", "T")
    assert res.exit_code == 2 and "the repository has no commits yet" in res.stderr
    detached = make_repo(tmp_path / "detached", {"src/a.py": ""})
    git(detached, "checkout", "-q", "--detach")
    monkeypatch.chdir(detached)
    res = plan("--split", "src", "--test", "t", "T")
    assert (
        res.exit_code == 2
        and "HEAD is detached; name the branch the workers start from with --base" in res.stderr
    )
    assert plan("--split", "src", "--test", "t", "--base", "main", "T").exit_code == 0
