"""Agent CLI configuration in the worktree, put back to the worker's start commit before each start.

A CLI loads its configuration (`.claude`, `.opencode/plugin/*.js`, `.aider.conf.yml`, MCP
servers...) at start, before any hook: code that runs outside the guard. The guard makes a direct
write there TIER 3, but an agent can plant one another way (`git apply`, `tar x`, a test it
wrote), and a folder can ignore itself (`.opencode/.gitignore` holding `*`), so neither
`git status` nor `git clean -fd` sees it. Before every agent start each path of the policy's
`paths.agent_config` is therefore made exactly what the start commit has: a tracked file gets its
content back, anything else there (ignored or not) is removed. Paths already as the start commit
has them are not touched. Symlinks are never followed: a symlink on the way to such a path
(`.vscode` -> elsewhere, for `.vscode/mcp.json`) is itself reset.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from boss.core import gittrees
from worker.autonomy.policy import any_match

GLOB = frozenset("*?[")
DIR = "dir"
GITLINK = "160000"


@dataclass
class AgentConfig:
    """The agent-config paths of one worktree, and the commit they are reset to."""

    worktree: Path
    start: str
    patterns: tuple[str, ...]
    # The state the last start began with (after the profile wrote its own files), by path.
    left: dict[str, str] | None = None
    _tracked: dict[str, tuple[str, str]] | None = field(default=None, repr=False)

    def reset(self) -> list[str]:
        """Put every agent-config path back as the start commit has it.

        Returns what differed from the state the last start began with (from the start commit
        before the first): `path (added|changed|deleted)`, for the state log.
        """
        roots = self._roots()
        before = self._state(roots)
        wanted = self._wanted(roots)
        stale = [r for r in roots if _within(before, r) != _within(wanted, r)]
        for root in stale:
            _remove(self.worktree / root)
        restore = {
            p: e for p, e in self.tracked().items() if e[0] != GITLINK and any(_in(p, r) for r in stale)
        }
        gittrees.write_entries(self.worktree, restore)
        return describe(before, self.left if self.left is not None else wanted)

    def mark(self) -> None:
        """Remember the agent-config paths as they are now, just before the agent starts."""
        self.left = self._state(self._roots())

    def tracked(self) -> dict[str, tuple[str, str]]:
        """The start commit's files at or under the patterns and every folder on their way."""
        if self._tracked is None:
            if any(GLOB.intersection(p) for p in self.patterns):
                listing = gittrees.tree_entries(self.worktree, self.start)
            else:
                ways = {
                    "/".join(p.split("/")[: i + 1]) for p in self.patterns for i in range(p.count("/") + 1)
                }
                listing = gittrees.tree_entries(self.worktree, self.start, sorted(ways))
            self._tracked = listing
        return self._tracked

    def _roots(self) -> list[str]:
        """The agent-config paths on disk or at the start commit (none inside another)."""
        found: set[str] = set()
        literal = [p for p in self.patterns if not GLOB.intersection(p)]
        for pattern in literal:
            root = _on_disk(self.worktree, pattern)
            if root:
                found.add(root)
        globs = tuple(p for p in self.patterns if GLOB.intersection(p))
        if globs:
            found.update(_walk(self.worktree, globs))
        for path in self.tracked():
            parts = path.split("/")
            for i in range(1, len(parts) + 1):
                prefix = "/".join(parts[:i])
                if any_match(self.patterns, (prefix,)):
                    found.add(prefix)
                    break
        return sorted(r for r in found if not any(r != o and _in(r, o) for o in found))

    def _state(self, roots: list[str]) -> dict[str, str]:
        algo = "sha1" if len(self.start) == 40 else "sha256"
        state: dict[str, str] = {}
        for root in roots:
            top = self.worktree / root
            _add(state, root, top, algo)
            if top.is_dir() and not top.is_symlink():
                for folder, dirs, files in os.walk(top):
                    for name in [*dirs, *files]:
                        full = Path(folder) / name
                        _add(state, full.relative_to(self.worktree).as_posix(), full, algo)
        return state

    def _wanted(self, roots: list[str]) -> dict[str, str]:
        """The state the start commit gives these roots: its files and the folders that hold them."""
        wanted: dict[str, str] = {}
        for path, (mode, sha) in self.tracked().items():
            root = next((r for r in roots if _in(path, r)), None)
            if root is None:
                continue
            wanted[path] = DIR if mode == GITLINK else f"{mode} {sha}"
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            while parent and _in(parent, root):
                wanted[parent] = DIR
                parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
        return wanted


_PATTERNS: dict[Path, tuple[str, ...]] = {}


def patterns(repo: Path) -> tuple[str, ...]:
    """The policy's `paths.agent_config` for repo, loaded once per process (the worker pool
    loads it before it forks its workers: a policy costs milliseconds to load)."""
    if repo not in _PATTERNS:
        from worker.autonomy.policy import AGENT_CONFIG, PROJECT_POLICY
        from worker.autonomy.policy_file import load_policy

        own = (repo / PROJECT_POLICY).is_file()  # without one, no YAML parser to import
        _PATTERNS[repo] = tuple(load_policy(repo).agent_config) if own else AGENT_CONFIG
    return _PATTERNS[repo]


def describe(now: dict[str, str], then: dict[str, str]) -> list[str]:
    """The files (or, when only folders differ, the folders) that differ between two states."""
    diff = sorted(p for p in {*now, *then} if now.get(p) != then.get(p))
    files = [p for p in diff if now.get(p, "") != DIR and then.get(p, "") != DIR] or diff
    how = ["added" if p not in then else "deleted" if p not in now else "changed" for p in files]
    return [f"{p} ({h})" for p, h in zip(files, how, strict=True)]


def _in(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def _within(state: dict[str, str], root: str) -> dict[str, str]:
    return {p: v for p, v in state.items() if _in(p, root)}


def _on_disk(worktree: Path, pattern: str) -> str | None:
    """pattern when it exists, the first symlink on the way to it, or None."""
    parts = pattern.split("/")
    current = worktree
    for i, part in enumerate(parts):
        current = current / part
        if current.is_symlink():
            return "/".join(parts[: i + 1])
        if not current.exists():
            return None
    return pattern


def _walk(worktree: Path, globs: tuple[str, ...]) -> set[str]:
    found: set[str] = set()
    for folder, dirs, files in os.walk(worktree):
        base = Path(folder).relative_to(worktree).as_posix()
        prefix = "" if base == "." else base + "/"
        if not prefix:
            dirs[:] = [d for d in dirs if d != ".git"]
        for name in [*dirs, *files]:
            if any_match(globs, (prefix + name,)):
                found.add(prefix + name)
        dirs[:] = [d for d in dirs if prefix + d not in found]
    return found


def _add(state: dict[str, str], rel: str, path: Path, algo: str) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        state[rel] = f"120000 {_blob(os.fsencode(path.readlink()), algo)}"
    elif stat.S_ISREG(info.st_mode):
        mode = "100755" if info.st_mode & stat.S_IXUSR else "100644"
        state[rel] = f"{mode} {_blob(path.read_bytes(), algo)}"
    elif stat.S_ISDIR(info.st_mode):
        state[rel] = DIR
    else:
        state[rel] = "other"


def _blob(data: bytes, algo: str) -> str:
    """The object name git gives these bytes as a blob."""
    return hashlib.new(algo, b"blob %d\0" % len(data) + data).hexdigest()


def _remove(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        path.chmod(stat.S_IRWXU)
        for folder, dirs, _files in os.walk(path):
            # A folder the agent made read-only must not keep its files.
            for name in dirs:
                sub = Path(folder) / name
                if not sub.is_symlink():
                    sub.chmod(stat.S_IRWXU)
        shutil.rmtree(path)
