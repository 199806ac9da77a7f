"""The sandbox around every agent run and every test run: bubblewrap, never a home-made one.

Inside, the whole file system is read-only but for what a run must write: the worktree (or the
integration worktree), a private temporary folder (TMPDIR) and, for an agent run, its CLI's own
state folders. The repository's git directory, `.boss/`, the main checkout, the other worktrees
and the rest of `$HOME` cannot be changed; well-known credential stores in `$HOME` are hidden.
Every process of a run lives in the sandbox's own PID namespace and dies with it (a `setsid`
daemon included). A test run gets a network namespace of its own (loopback only) unless the
manifest opens it; an agent run shares the host's network, since it must reach its model API
(bubblewrap filters no domains: README, Threat model).

`sandbox:` in `.boss/config.yaml` (or BOSS_SANDBOX in the environment, which wins) chooses:
`required` refuses to run without it, `auto` (the default) uses it when bubblewrap works here,
`off` never does. What was used is said in every status, plan and report (`describe()`).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from boss.core import proc
from boss.core.errors import CommandError, SandboxError

MODES = ("required", "auto", "off")
DEFAULT_MODE = "auto"
ENV_MODE = "BOSS_SANDBOX"
ENV_WRITABLE = "BOSS_SANDBOX_WRITABLE"
ENV_TOOL = "BOSS_BWRAP"  # bubblewrap's path, where it is not `bwrap` on PATH
TOOL = "bwrap"
STOPS = "INT,TERM"  # the signals of a stop before the kill (boss.core.proc.STOP_STAGES)
NESTED_ID = 1000  # the uid and gid a run started by root has inside its sandbox (see _user)
# Credential stores an agent or a test has no business reading; hidden (empty) in every run.
# Browser profiles too: their history, cookies and sessions hold `boss ui`'s links and other
# sites' logins.
SECRETS = (
    ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".netrc", ".git-credentials",
    ".pypirc", ".config/gcloud", ".config/gh", ".config/hub", ".password-store",
    ".local/share/keyrings",
    ".config/chromium", ".config/google-chrome", ".config/google-chrome-beta",
    ".config/google-chrome-unstable", ".config/BraveSoftware", ".config/microsoft-edge",
    ".config/vivaldi", ".config/opera", ".mozilla", ".librewolf", ".waterfox",
    ".cache/chromium", ".cache/google-chrome", ".cache/mozilla", ".cache/BraveSoftware",
    ".cache/microsoft-edge", ".cache/vivaldi", "snap/firefox", "snap/chromium",
    ".var/app/org.mozilla.firefox", ".var/app/org.chromium.Chromium", ".var/app/com.google.Chrome",
    "Library/Application Support/Google/Chrome", "Library/Application Support/Firefox",
)  # fmt: skip
# The namespaces and mounts of every run: nothing writable, no capabilities, its own PIDs.
BASE = (
    "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/dev/shm",  # noqa: S108
    "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--cap-drop", "ALL",
)  # fmt: skip


@dataclass(frozen=True)
class Confinement:
    """One run's sandbox: what it may write, and whether it keeps the host's network."""

    tool: str
    cwd: Path
    tmp: Path
    writable: tuple[Path, ...] = ()
    network: bool = False
    home: Path | None = None
    copies: tuple[tuple[Path, Path], ...] = ()  # (private copy, original): the original's place
    readonly: tuple[Path, ...] = ()  # inside a writable folder, yet read-only (a worktree's .git)

    def wrap(self, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
        """argv run inside the sandbox. A command that cannot be found is left unwrapped, so
        that starting it fails as it would without a sandbox (exit 127, not bwrap's 1)."""
        program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
        if program is None:
            return list(argv)
        # bubblewrap ignores the interrupt and terminate of a stop (boss.core.proc.STOP_STAGES), which
        # reach the run's whole process group: dying at once, it would take the run down with it
        # (--die-with-parent) before the command had its chance to end cleanly (Claude Code
        # writes its usage when interrupted). The command gets their default action back.
        env_tool = shutil.which("env") or "/usr/bin/env"
        out = [env_tool, f"--ignore-signal={STOPS}", self.tool, *BASE, *_user()]
        if not self.network:
            out.append("--unshare-net")
        for path in _secrets(self.home):
            hide = (
                ["--tmpfs", str(path), "--remount-ro", str(path)]
                if path.is_dir()
                else ["--ro-bind", os.devnull, str(path)]
            )
            out += hide
        for path in _outermost([self.tmp, *self.writable]):
            out += ["--bind", str(path), str(path)]
        for copy, original in self.copies:
            out += ["--bind", str(copy), str(original)]
        for path in self.readonly:
            out += ["--ro-bind", str(path), str(path)]
        out += ["--setenv", "TMPDIR", str(self.tmp), "--chdir", str(self.cwd), "--"]
        out += [env_tool, f"--default-signal={STOPS}", program, *argv[1:]]
        return out


@dataclass(frozen=True)
class Sandbox:
    """The sandbox this process uses: the mode asked for, and bubblewrap's path when in use."""

    mode: str
    tool: str | None = None
    why_none: str = ""

    @property
    def active(self) -> bool:
        return self.tool is not None

    def describe(self) -> str:
        """One line for statuses, plans and reports."""
        if self.tool is not None:
            return f"bubblewrap ({self.tool})"
        return f"none: {self.why_none}"

    def label(self) -> str:
        """The short word a status keeps: `bubblewrap`, or `none`."""
        return "bubblewrap" if self.active else "none"

    @contextmanager
    def confine(
        self,
        cwd: Path,
        *,
        writable: Iterable[Path] = (),
        network: bool = False,
        prefix: str = "boss-",
        ephemeral: Iterable[Path] = (),
        readonly: Iterable[Path] = (),
    ) -> Iterator[Confinement | None]:
        """A private temporary folder, and the run's confinement in it (None without a sandbox);
        the folder and what the run left in it are removed afterwards.

        `ephemeral` paths (a CLI's own settings and state in $HOME) are writable as a private copy
        made for this run: what the run writes there is gone after it, so an agent cannot plant a
        hook or a setting that the user's own, unsandboxed sessions of that CLI would then obey.
        """
        tmp = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            if self.tool is None:
                yield None
            else:
                home = Path(os.environ["HOME"]) if os.environ.get("HOME") else None
                paths = tuple(p for p in [*writable, *extra_writable()] if p.exists())
                copies = _private_copies([p for p in ephemeral if p.exists()], tmp / ".boss-state")
                kept = tuple(p for p in readonly if p.exists())
                yield Confinement(self.tool, cwd, tmp, paths, network, home, copies, kept)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# What a private copy of a CLI's state leaves out: histories, transcripts, caches and logs (large,
# and of no use to one headless run), and any single file over COPY_LIMIT bytes.
NOT_COPIED = frozenset({
    "projects", "sessions", "log", "logs", "todos", "shell-snapshots", "statsig", "tmp", "cache",
    "storage", "snapshot", "file-history", "history.jsonl", "history", "node_modules",
})  # fmt: skip
COPY_LIMIT = 16 * 1024 * 1024


def _private_copies(paths: Iterable[Path], into: Path) -> tuple[tuple[Path, Path], ...]:
    """A copy of each path (file or folder) under `into`, paired with the original."""
    pairs = []
    for n, original in enumerate(paths):
        copy = into / str(n)
        copy.parent.mkdir(parents=True, exist_ok=True)
        if original.is_dir():
            shutil.copytree(original, copy, symlinks=True, ignore=_not_copied, ignore_dangling_symlinks=True)
        elif original.stat().st_size <= COPY_LIMIT:
            shutil.copy2(original, copy)
        else:
            continue
        pairs.append((copy, original))
    return tuple(pairs)


def _not_copied(folder: str, names: list[str]) -> set[str]:
    skipped = set()
    for name in names:
        path = Path(folder) / name
        try:
            big = path.is_file() and not path.is_symlink() and path.stat().st_size > COPY_LIMIT
        except OSError:
            big = True
        if name in NOT_COPIED or big:
            skipped.add(name)
    return skipped


def extra_writable() -> list[Path]:
    """Folders you let every sandboxed run write besides its own (BOSS_SANDBOX_WRITABLE, separated
    like PATH): a shared cache, or a coverage collector's data folder."""
    return [Path(p) for p in os.environ.get(ENV_WRITABLE, "").split(os.pathsep) if p.strip()]


def inner_uid() -> int:
    """The uid a sandboxed run has inside its sandbox (see _user)."""
    return NESTED_ID if os.geteuid() == 0 else os.geteuid()


def _user() -> list[str]:
    """A user namespace of its own, so that a CLI's own sandbox (Codex starts bubblewrap for each
    command) can nest in ours. Root's mapping to itself would make the inner bubblewrap take the
    privileged path and fail; run as root, the run's user is uid/gid 1000 inside (root outside)."""
    if os.geteuid() == 0:
        return ["--unshare-user", "--uid", str(NESTED_ID), "--gid", str(NESTED_ID)]
    return ["--unshare-user"]


def _secrets(home: Path | None) -> list[Path]:
    if home is None:
        return []
    return [home / name for name in SECRETS if (home / name).exists() and not (home / name).is_symlink()]


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """Each path once, a path inside another bound one left out (its bind would be redundant)."""
    resolved = sorted({p.resolve() for p in paths}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in resolved:
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return kept


@functools.cache
def probe(tool: str) -> str:
    """Why bubblewrap cannot run here ('' when it can): a real start with the flags every run uses."""
    try:
        done = proc.run([tool, *BASE, *_user(), "--unshare-net", "--", "true"], check=False, timeout=20)
    except CommandError as e:
        return f"{tool} cannot start: {e}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return f"{tool} does not work here: {last}"
    return ""


def tool_path() -> str | None:
    """Bubblewrap's path here (BOSS_BWRAP, else `bwrap` on PATH); None when there is none."""
    return shutil.which(os.environ.get(ENV_TOOL) or TOOL)


def mode_of(configured: str) -> str:
    """The mode in force: BOSS_SANDBOX when set, else the project's `sandbox:` setting."""
    return os.environ.get(ENV_MODE) or configured or DEFAULT_MODE


def resolve(configured: str = DEFAULT_MODE, where: str = ".boss/config.yaml") -> Sandbox:
    """The sandbox for this process; raise SandboxError when it is required and cannot run."""
    mode = mode_of(configured)
    source = ENV_MODE if os.environ.get(ENV_MODE) else where
    if mode not in MODES:
        msg = f"{source}: field sandbox: {mode!r} is not one of {', '.join(MODES)}"
        raise SandboxError(msg)
    if mode == "off":
        return Sandbox(mode, why_none=f"sandbox: off ({source})")
    tool = tool_path()
    why = _unavailable(tool)
    if tool is not None and not why:
        return Sandbox(mode, tool)
    if mode == "required":
        msg = f"the sandbox is required ({source}) but {why}; {install_hint()}"
        raise SandboxError(msg)
    return Sandbox(mode, why_none=f"{why} (sandbox: auto)")


def _unavailable(tool: str | None) -> str:
    if not sys.platform.startswith("linux"):
        return f"no supported sandbox on {sys.platform} (bubblewrap is Linux only)"
    if tool is None:
        return "bubblewrap (bwrap) is not installed"
    return probe(tool)


def install_hint() -> str:
    """How to get the sandbox, or go without it knowingly."""
    return "install bubblewrap (`apt-get install bubblewrap`, `dnf install bubblewrap`) or set `sandbox: off`"


def plan_line(configured: str) -> str:
    """What confines this plan's runs on this machine, for plan.md and reports."""
    try:
        found = resolve(configured)
    except SandboxError as e:
        return f"none, and required: no run will start ({e})"
    if found.active:
        return f"bubblewrap (sandbox: {found.mode}): agents and tests write only their worktree"
    return f"NONE ({found.why_none}): agents and tests can write anywhere you can"
