"""The built-in agent profiles of the real CLIs: Claude Code, Codex, Aider, Gemini CLI, OpenCode.

One module per CLI in `worker.clis` holds its profile (how it is started, how its output is
read) and its enforcement renderer; this module is their registry.
"""

from __future__ import annotations

from worker.agents import AgentProfile
from worker.clis import aider, claude, codex, gemini, opencode
from worker.clis.common import ARGV_PROMPT_LIMIT, scope_files

__all__ = ["ARGV_PROMPT_LIMIT", "LIMITS", "PROFILES", "scope_files"]

PROFILES: dict[str, AgentProfile] = {
    "claude": claude.ClaudeProfile(),
    "codex": codex.CodexProfile(),
    "aider": aider.AiderProfile(),
    "gemini": gemini.GeminiProfile(),
    "opencode": opencode.OpenCodeProfile(),
}

# What each CLI's enforcement cannot do, said plainly (the README's table follows it).
LIMITS = {m.__name__.rsplit(".", 1)[1]: m.LIMITS for m in (claude, codex, gemini, opencode, aider)}
