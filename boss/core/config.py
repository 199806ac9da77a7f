"""Project defaults in `.boss/config.yaml`: agent profiles, jobs, worktree root, timeouts."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boss.core import yamlio
from boss.core.errors import ConfigError, InputError
from boss.core.manifest_rules import MAX_SECONDS, control_problem, show
from boss.core.paths import BOSS_DIR, DEFAULT_WORKTREE_ROOT
from boss.core.runlog import DEFAULT_CAP, MB
from boss.core.sandbox import DEFAULT_MODE, MODES

_TOP_KEYS = {
    "agents", "jobs", "worktree_root", "planner_timeout", "heartbeat_stale", "log_cap_mb", "sandbox",
    "merge_slots", "notify", "engine", "scheduler", "remote",
}  # fmt: skip
ENGINES = ("local", "dask")
MAX_SLOTS = 64
_AGENT_KEYS = {"command", "read_only_command", "env", "description"}
MAX_NUMBER = MAX_SECONDS  # a year of seconds: more is a typo (and overflows a clock)
MAX_JOBS = 1024
MAX_LOG = 100 * 1024  # MB: 100 GB per log
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class AgentConfig:
    """A project's own agent profile: a bash command run in the worktree."""

    name: str
    command: str
    read_only_command: str = ""
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Config:
    """The project's defaults; every field has a sensible value when the file is absent."""

    agents: dict[str, AgentConfig] = field(default_factory=dict)
    jobs: int = 0  # 0: the number of CPUs, at least 2
    merge_slots: int = 0  # the merge ceremony's parallel test slots; 0: the number of CPUs, at least 2
    worktree_root: str = DEFAULT_WORKTREE_ROOT
    planner_timeout: int = 600
    heartbeat_stale: int = 120  # seconds without a heartbeat before RUNNING reads CRASHED
    sandbox: str = DEFAULT_MODE  # required | auto | off (boss.core.sandbox); BOSS_SANDBOX wins
    log_cap_mb: int = DEFAULT_CAP // MB  # the most one run's log keeps on disk (boss.core.runlog)
    notify: str = ""  # a shell command run on each event, the event as JSON on stdin (boss.core.notify)
    engine: str = "local"  # where run_workers.sh runs the workers: here (local) or on a Dask cluster
    scheduler: str = ""  # the Dask scheduler's address (tcp://HOST:PORT), for engine dask
    remote: str = ""  # the shared git remote every node reaches (a path or URL), for engine dask

    def effective_slots(self, given: int | None = None) -> int:
        """The ceremony's test slots: given (`--slots`), else merge_slots, else the CPUs (at least 2)."""
        if given:
            return given
        return self.merge_slots if self.merge_slots > 0 else max(2, os.cpu_count() or 2)

    def cluster(
        self, command: str, engine: str | None, scheduler: str | None, remote: str | None
    ) -> tuple[str, str]:
        """(scheduler, remote) when the engine (`--engine`; else dask when --scheduler or --remote is
        given; else `engine:`) is dask, else ("", "");
        InputError naming command when the scheduler or the remote is neither given nor set."""
        if (engine or ("dask" if scheduler or remote else self.engine)) != "dask":  # a place named: dask
            return "", ""
        where = scheduler or self.scheduler, remote or self.remote
        for value, flag in zip(where, ("--scheduler", "--remote"), strict=True):
            if not value:
                msg = f"{command} --engine dask needs {flag} (or {flag[2:]} in .boss/config.yaml)"
                raise InputError(msg)
        return where

    @property
    def effective_jobs(self) -> int:
        """Workers run at once when -j is not given."""
        return self.jobs if self.jobs > 0 else max(2, os.cpu_count() or 2)

    @property
    def log_cap(self) -> int:
        """The log cap in bytes."""
        return self.log_cap_mb * MB


def config_path(repo: Path) -> Path:
    """Where the project's config lives."""
    return repo / BOSS_DIR / "config.yaml"


def _fail(path: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {problem}")


def _positive_int(path: Path, key: str, value: Any, allow_zero: bool = False, most: int = MAX_NUMBER) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise _fail(path, f"field {key}", f"must be a whole number {'>= 0' if allow_zero else '>= 1'}")
    if value > most:
        raise _fail(path, f"field {key}", f"must be at most {most}")
    return value


def _text(path: Path, where: str, value: str) -> str:
    """value, or ConfigError when it holds a NUL byte or a control character (no command,
    environment or path can hold a NUL; a terminal escape shows what is not there)."""
    problem = control_problem(value, multiline=True)
    if problem:
        raise _fail(path, where, problem)
    return value


def _string(path: Path, key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(path, f"field {key}", "must be a string")
    return value.strip()


def _agent(path: Path, name: str, raw: Any) -> AgentConfig:
    where = f"agent {show(name)}"
    if control_problem(name):
        raise _fail(path, where, f"the name {control_problem(name)}")
    if isinstance(raw, str):
        raw = {"command": raw}
    if not isinstance(raw, dict):
        raise _fail(path, where, "must be a mapping with a `command`")
    unknown = sorted(set(raw) - _AGENT_KEYS, key=str)
    if unknown:
        raise _fail(
            path,
            f"{where}: field {unknown[0]}",
            f"unknown key (allowed: {', '.join(sorted(_AGENT_KEYS))})",
        )
    command = raw.get("command")
    if not isinstance(command, str) or not command.strip():
        raise _fail(path, f"{where}: field command", "must be a non-empty shell command")
    env = raw.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and _ENV_NAME.fullmatch(k) for k in env):
        raise _fail(path, f"{where}: field env", "must map variable names (letters, digits, _) to values")
    for key, value in env.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            # A list or mapping has no one text form in an environment; true/false has YAML's.
            raise _fail(path, f"{where}: field env.{key}", "must be a string or a number (quote it)")
        _text(path, f"{where}: field env.{key}", str(value))
    texts = {k: raw.get(k) or "" for k in ("command", "read_only_command", "description")}
    for key, value in texts.items():
        if not isinstance(value, str):
            raise _fail(path, f"{where}: field {key}", "must be a string")
        _text(path, f"{where}: field {key}", value)
    return AgentConfig(
        name=name,
        command=command,
        read_only_command=texts["read_only_command"],
        env={k: str(v) for k, v in env.items()},
        description=texts["description"],
    )


def load_config(repo: Path) -> Config:
    """Read `.boss/config.yaml`, or the defaults when there is none."""
    path = config_path(repo)
    if not path.is_file():
        return Config()
    raw = yamlio.load_file(path, cached=True) or {}
    if not isinstance(raw, dict):
        raise _fail(path, "top level", "must be a mapping")
    unknown = sorted(set(raw) - _TOP_KEYS, key=str)
    if unknown:
        raise _fail(path, f"field {unknown[0]}", f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    agents_raw = raw.get("agents") or {}
    if not isinstance(agents_raw, dict):
        raise _fail(path, "field agents", "must map profile names to profiles")
    agents = {str(n): _agent(path, str(n), a) for n, a in agents_raw.items()}
    root = raw.get("worktree_root", DEFAULT_WORKTREE_ROOT)
    if not isinstance(root, str) or not root.strip():
        raise _fail(path, "field worktree_root", "must be a path")
    _text(path, "field worktree_root", root)
    sandbox = raw.get("sandbox", DEFAULT_MODE)
    sandbox = "off" if sandbox is False else sandbox  # YAML 1.1 reads a bare `off` as false
    if sandbox not in MODES:
        raise _fail(path, "field sandbox", f"must be one of {', '.join(MODES)}")
    notify = raw.get("notify") or ""
    if not isinstance(notify, str):
        raise _fail(path, "field notify", "must be a shell command (a string)")
    _text(path, "field notify", notify)
    engine = raw.get("engine", "local")
    if engine not in ENGINES:
        raise _fail(path, "field engine", f"must be one of {', '.join(ENGINES)}")
    places = {k: _text(path, f"field {k}", _string(path, k, raw.get(k))) for k in ("scheduler", "remote")}
    return Config(
        engine=engine,
        scheduler=places["scheduler"],
        remote=places["remote"],
        agents=agents,
        notify=notify.strip(),
        sandbox=sandbox,
        jobs=_positive_int(path, "jobs", raw.get("jobs", 0), allow_zero=True, most=MAX_JOBS),
        merge_slots=_positive_int(
            path, "merge_slots", raw.get("merge_slots", 0), allow_zero=True, most=MAX_SLOTS
        ),
        worktree_root=root,
        planner_timeout=_positive_int(path, "planner_timeout", raw.get("planner_timeout", 600)),
        heartbeat_stale=_positive_int(path, "heartbeat_stale", raw.get("heartbeat_stale", 120)),
        log_cap_mb=_positive_int(path, "log_cap_mb", raw.get("log_cap_mb", DEFAULT_CAP // MB), most=MAX_LOG),
    )
