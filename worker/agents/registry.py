"""The built-in agent profiles of the real CLIs: Claude Code, Codex, Aider, Gemini CLI, OpenCode.

One module per CLI in `worker.agents.clis` holds its profile (how it is started, how its output is
read) and its enforcement renderer; this module is their registry.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from boss.core import sandbox
from boss.core.config import AgentConfig, Config
from boss.core.errors import ConfigError, ManifestError, SandboxError
from boss.core.manifest import Manifest
from worker.agents.clis import aider, claude, codex, gemini, opencode
from worker.agents.clis.common import ARGV_PROMPT_LIMIT, STATE_DIR, scope_files
from worker.agents.profile import AgentProfile, CommandProfile, ScriptedProfile

__all__ = [
    "ARGV_PROMPT_LIMIT",
    "LIMITS",
    "PROFILES",
    "STATE_DIR",
    "agent_sandbox",
    "builtin_names",
    "check_agents",
    "get_profile",
    "scope_files",
    "state_paths",
]

PROFILES: dict[str, AgentProfile] = {
    "claude": claude.ClaudeProfile(),
    "codex": codex.CodexProfile(),
    "aider": aider.AiderProfile(),
    "gemini": gemini.GeminiProfile(),
    "opencode": opencode.OpenCodeProfile(),
}

# What each CLI's enforcement cannot do, said plainly (the README's table follows it).
LIMITS = {m.__name__.rsplit(".", 1)[1]: m.LIMITS for m in (claude, codex, gemini, opencode, aider)}


# Where each CLI keeps its own state (sessions, caches, settings it rewrites): writable in its
# sandbox (boss.core.sandbox), relative to $HOME, or to an XDG folder as (variable, default, name).
_HOME_STATE = {
    "claude": (".claude", ".claude.json"),
    "codex": (".codex",),
    "gemini": (".gemini",),
    "aider": (".aider",),
    "opencode": (),
}
_XDG_STATE = {
    "opencode": (
        ("XDG_DATA_HOME", ".local/share"), ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config"),
    ),
}  # fmt: skip


def state_paths(name: str, env: Mapping[str, str]) -> list[Path]:
    """The folders (and files) of its own the CLI `name` writes in $HOME; folders it lacks are
    made, so that the sandbox can offer them (as a private copy: boss.core.sandbox)."""
    home = Path(env.get("HOME") or Path.home())
    found = [home / rel for rel in _HOME_STATE.get(name, ())]
    if name == "codex":
        # Codex's own sandbox keeps a folder in /tmp itself, whatever TMPDIR says.
        found.append(Path("/tmp") / f"codex-daemon-{sandbox.inner_uid()}")  # noqa: S108
        if env.get("CODEX_HOME"):
            found.append(Path(env["CODEX_HOME"]))
    found += [Path(env.get(var) or home / default) / name for var, default in _XDG_STATE.get(name, ())]
    for path in found:
        if not path.suffix and not path.exists():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return found


def agent_sandbox(config: Config, agents: Collection[str]) -> sandbox.Sandbox:
    """The sandbox the runs of `agents` use. Raise SandboxError when it is required and cannot
    run, or when a real agent CLI among them would run without it and the user did not say `off`."""
    found = sandbox.resolve(config.sandbox)
    real = sorted({a for a in agents if a in PROFILES and a not in config.agents})
    if real and not found.active and found.mode != "off":
        msg = (
            f"the {', '.join(real)} agent CLI runs only inside a sandbox, and here there is "
            f"{found.describe()}; {sandbox.install_hint()} in .boss/config.yaml to run it unconfined"
        )
        raise SandboxError(msg)
    return found


def _builtin() -> dict[str, AgentProfile]:
    return {"scripted": ScriptedProfile(), **PROFILES}


def builtin_names() -> list[str]:
    """Names of the built-in profiles."""
    return sorted(_builtin())


def get_profile(name: str, config: Config) -> AgentProfile:
    """The profile called name: the project's own first, then the built-ins."""
    own: AgentConfig | None = config.agents.get(name)
    if own is not None:
        return CommandProfile(own.name, own.command, own.read_only_command, own.env)
    builtin = _builtin()
    if name in builtin:
        return builtin[name]
    known = ", ".join(sorted({*builtin, *config.agents}))
    msg = f".boss/config.yaml: agent {name!r} is not defined (known: {known}); add it under `agents:`"
    raise ConfigError(msg)


def check_agents(m: Manifest, config: Config, source: str, only: str | None = None) -> None:
    """ManifestError naming each worker whose `agent` is no profile (built-in or the project's)."""
    known = sorted({*_builtin(), *config.agents})
    problems = []
    for w in m.workers:
        name = m.settings(w).agent
        if (only is None or w.id == only) and name not in known:
            problems.append(
                f"{source}: worker {w.id} field agent: no agent profile {name!r} (known: "
                f"{', '.join(known)}); use one of them, or define it under `agents:` in .boss/config.yaml"
            )
    if problems:
        raise ManifestError("\n".join(problems), problems)
