"""The built-in agent profiles of the real CLIs: Claude Code, Codex, Aider, Gemini CLI, OpenCode.

One module per CLI in `worker.clis` holds its profile (how it is started, how its output is
read) and its enforcement renderer; this module is their registry.
"""

from __future__ import annotations

from typing import Any

from worker.agents import AgentProfile, AgentRun
from worker.clis import aider, claude, codex, gemini, opencode
from worker.clis.common import ARGV_PROMPT_LIMIT, scope_files
from worker.enforce import Inputs
from worker.policy import Policy

__all__ = ["ARGV_PROMPT_LIMIT", "LIMITS", "PROFILES", "render_enforcement", "scope_files"]

PROFILES: dict[str, AgentProfile] = {
    "claude": claude.ClaudeProfile(),
    "codex": codex.CodexProfile(),
    "aider": aider.AiderProfile(),
    "gemini": gemini.GeminiProfile(),
    "opencode": opencode.OpenCodeProfile(),
}

# What each CLI's enforcement cannot do, said plainly (the README's table follows it).
LIMITS = {m.__name__.rsplit(".", 1)[1]: m.LIMITS for m in (claude, codex, gemini, opencode, aider)}


def _no_render(r: Inputs) -> dict[str, Any]:  # noqa: ARG001 - Aider has nothing to render
    return {}


RENDERERS = {"claude": claude.render, "codex": codex.render, "gemini": gemini.render,
             "opencode": opencode.render}  # fmt: skip


def render_enforcement(agent: str, run: AgentRun, policy: Policy) -> dict[str, Any]:
    """Render agent's enforcement for run (worker.enforce with the CLI's own renderer)."""
    from worker import enforce

    return enforce.render_enforcement(agent, run, policy, RENDERERS.get(agent, _no_render))
