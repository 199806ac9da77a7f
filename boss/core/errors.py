"""The one family of expected errors; the CLI maps them to exit codes in one place."""

from __future__ import annotations


class BossError(Exception):
    """Base: an expected failure with a message a person can act on (exit 1)."""

    exit_code = 1


class InputError(BossError):
    """Bad input or usage: a file, a field or an argument is wrong (exit 2)."""

    exit_code = 2


class ManifestError(InputError):
    """The manifest (or a Markdown plan) is invalid; `problems` holds one line per problem."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


class ConfigError(InputError):
    """`.boss/config.yaml` or `.boss/policy.yaml` is invalid."""


class PlanNotFound(InputError):
    """No plan, or several where one must be named."""


class CommandError(BossError):
    """A subprocess the tool needed failed; the message shows command, code and output."""

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(self._message())

    def _message(self) -> str:
        out = self.stdout.strip()[-2000:]
        err = self.stderr.strip()[-2000:]
        parts = [f"command failed (exit {self.returncode}): {' '.join(self.argv)}"]
        if err:
            parts.append(f"stderr: {err}")
        if out:
            parts.append(f"stdout: {out}")
        return "\n".join(parts)


class GitError(CommandError):
    """A git command failed."""


class StateError(BossError):
    """State on disk (status, journal, worktree) is not what the command needs."""


class AgentError(BossError):
    """An agent or planner produced nothing usable."""


class SandboxError(BossError):
    """A run needs the sandbox (`sandbox: required`, or a real agent CLI) and it cannot start."""
