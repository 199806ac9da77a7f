"""worker.agents.cli_config: agent CLI configuration put back to the start commit before each start."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import git, make_repo, write_files

from worker.agents.cli_config import AgentConfig
from worker.agents.clis.gemini import PROJECT_SETTINGS, project_settings
from worker.autonomy.policy_file import load_policy

PATTERNS = tuple(load_policy().agent_config)
CLAUDE = '{"permissions": {"allow": ["Bash"]}}\n'
GEMINI = '{"ui": {"theme": "Default"}}\n'


@pytest.fixture
def wt(tmp_path: Path) -> Path:
    """A repository whose start commit tracks a .claude/settings.json and ordinary files."""
    return make_repo(
        tmp_path / "repo",
        {
            "README.md": "# r\n",
            "src/app.py": "x = 1\n",
            ".claude/settings.json": CLAUDE,
            ".vscode/settings.json": "{}\n",
        },
    )


def config(wt: Path, patterns: tuple[str, ...] = PATTERNS) -> AgentConfig:
    return AgentConfig(wt, git(wt, "rev-parse", "HEAD"), patterns)


def status(wt: Path) -> str:
    return git(wt, "status", "--porcelain", "--untracked-files=all")


def test_a_self_ignoring_opencode_plugin_is_gone_before_the_next_start(wt: Path) -> None:
    ac = config(wt)
    assert ac.reset() == []
    ac.mark()
    write_files(wt, {".opencode/.gitignore": "*\n", ".opencode/plugin/evil.js": "export default {}\n"})
    assert status(wt) == ""  # git status never shows it, git clean -fd never removes it
    assert ac.reset() == [".opencode/.gitignore (added)", ".opencode/plugin/evil.js (added)"]
    assert not (wt / ".opencode").exists()


def test_a_tracked_settings_file_modified_or_deleted_is_restored(wt: Path) -> None:
    ac = config(wt)
    ac.mark()
    settings = wt / ".claude" / "settings.json"
    settings.write_text('{"hooks": {"PreToolUse": []}}')
    (wt / ".claude" / "settings.local.json").write_text("{}")
    assert ac.reset() == [".claude/settings.json (changed)", ".claude/settings.local.json (added)"]
    assert settings.read_text() == CLAUDE
    assert not (wt / ".claude" / "settings.local.json").exists()
    assert status(wt) == ""
    ac.mark()
    settings.unlink()
    assert ac.reset() == [".claude/settings.json (deleted)"]
    assert settings.read_text() == CLAUDE
    assert status(wt) == ""
    (wt / ".claude").rename(wt / "moved")
    (wt / "moved").rename(wt / ".claude")  # nothing changed: nothing to say, nothing touched
    assert ac.reset() == []


def test_untracked_config_files_are_removed_and_nothing_else_is_touched(wt: Path) -> None:
    ac = config(wt)
    ac.mark()
    write_files(wt, {"opencode.json": "{}", ".mcp.json": "{}", ".vscode/mcp.json": "{}", "src/new.py": "y = 2\n",
                     "notes/.claude.md": "kept\n"})  # fmt: skip
    (wt / "src" / "app.py").write_text("x = 2\n")
    found = ac.reset()
    assert found == [".mcp.json (added)", ".vscode/mcp.json (added)", "opencode.json (added)"]
    assert not (wt / "opencode.json").exists() and not (wt / ".vscode" / "mcp.json").exists()
    assert (wt / ".vscode" / "settings.json").read_text() == "{}\n"
    assert (wt / "src" / "app.py").read_text() == "x = 2\n"
    assert (wt / "src" / "new.py").exists() and (wt / "notes" / ".claude.md").exists()


def test_a_symlink_is_never_followed(wt: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "mcp.json").write_text("theirs")
    (outside / "keep.txt").write_text("theirs")
    ac = config(wt)
    ac.mark()
    os.symlink(outside, wt / ".codex")
    (wt / ".claude").rename(wt / "elsewhere")
    os.symlink(wt / "elsewhere", wt / ".claude")
    found = ac.reset()
    assert ".codex (added)" in found
    assert not (wt / ".codex").exists() and (outside / "keep.txt").read_text() == "theirs"
    assert not (wt / ".claude").is_symlink()
    assert (wt / ".claude" / "settings.json").read_text() == CLAUDE
    # A symlink on the way to .vscode/mcp.json is reset (to the tracked folder), its target kept.
    ac.mark()
    (wt / ".vscode" / "settings.json").unlink()
    (wt / ".vscode").rmdir()
    os.symlink(outside, wt / ".vscode")
    ac.reset()
    assert not (wt / ".vscode").is_symlink()
    assert (wt / ".vscode" / "settings.json").read_text() == "{}\n"
    assert (outside / "mcp.json").read_text() == "theirs"


def test_a_read_only_folder_is_removed_too(wt: Path) -> None:
    ac = config(wt)
    ac.mark()
    write_files(wt, {".opencode/plugin/evil.js": "x"})
    (wt / ".opencode" / "plugin").chmod(0o500)
    (wt / ".opencode").chmod(0o500)
    assert ac.reset() == [".opencode/plugin/evil.js (added)"]
    assert not (wt / ".opencode").exists()


def test_glob_patterns_of_a_project_are_found_anywhere(wt: Path) -> None:
    ac = config(wt, (*PATTERNS, "*.agent.yml"))
    ac.mark()
    write_files(wt, {"deep/down/x.agent.yml": "a", "deep/down/x.yml": "b"})
    assert ac.reset() == ["deep/down/x.agent.yml (added)"]
    assert (wt / "deep/down/x.yml").exists()


def test_the_first_reset_reports_against_the_start_commit(wt: Path) -> None:
    write_files(wt, {".aider.conf.yml": "lint-cmd: evil\n"})  # left by an earlier run
    assert config(wt).reset() == [".aider.conf.yml (added)"]
    assert not (wt / ".aider.conf.yml").exists()


def test_a_committed_gemini_settings_file_keeps_working_with_the_gemini_profile(tmp_path: Path) -> None:
    wt = make_repo(tmp_path / "repo", {"README.md": "# r\n", PROJECT_SETTINGS: GEMINI})
    hooks = {
        "BeforeTool": [{"matcher": "run_shell_command", "hooks": [{"type": "command", "command": "guard"}]}]
    }
    ac = config(wt)
    for _ in range(3):  # reset, the profile's rewrite, the agent's run: iteration after iteration
        assert ac.reset() == []
        project_settings(wt, wt, hooks)
        ac.mark()
        written = json.loads((wt / PROJECT_SETTINGS).read_text())
        assert (
            written["ui"] == {"theme": "Default"}
            and written["hooks"]["BeforeTool"][0]["hooks"][0]["command"] == "guard"
        )
        assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""
    write_files(wt, {".gemini/extensions/evil/gemini-extension.json": "{}"})
    assert ac.reset() == [".gemini/extensions/evil/gemini-extension.json (added)"]
    assert (wt / PROJECT_SETTINGS).read_text() == GEMINI  # the committed content, until the rewrite
    assert not (wt / ".gemini" / "extensions").exists()
    assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""


def test_an_untracked_gemini_settings_file_is_removed_and_rewritten(tmp_path: Path) -> None:
    wt = make_repo(tmp_path / "repo")
    ac = config(wt)
    assert ac.reset() == []
    project_settings(wt, wt, {"BeforeTool": []})
    ac.mark()
    assert ac.reset() == []  # boss's own file is not the agent's doing
    assert not (wt / ".gemini").exists()
    assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""
