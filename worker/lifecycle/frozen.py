"""The acceptance test's files and harness as they were at the red gate, put back without
following a link.

The agent may have replaced a frozen file, or a folder above it, with a symbolic link (to
~/.bashrc, say) or a hard link: reading and restoring walk each path component by component
with O_NOFOLLOW, remove whatever is not the plain file or folder that was there, and write a
new file, so nothing outside the worktree is ever read as the test or written to.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from boss.core.errors import StateError

# What is at a path: ("file", content, mode), ("link", target, 0), ("other", b"", 0), or None.
State = tuple[str, bytes, int] | None
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_SKIP = ("__pycache__", ".pytest_cache")  # caches, deleted before each test run (pytest_report)


def _parent(root: Path, rel: str, *, create: bool) -> int | None:
    """An open descriptor of rel's folder, reached without following links; None when a
    component is missing or no folder (unless create, which replaces it with a new folder)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for name in rel.split("/")[:-1]:
        try:
            nxt = os.open(name, _DIR, dir_fd=fd)
        except OSError:
            if not create:
                os.close(fd)
                return None
            _remove(fd, name)
            os.mkdir(name, 0o755, dir_fd=fd)
            nxt = os.open(name, _DIR, dir_fd=fd)
        os.close(fd)
        fd = nxt
    return fd


def _remove(fd: int, name: str) -> None:
    """Remove the entry name in the folder fd, whatever it is, without following it."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=fd)
    else:
        os.unlink(name, dir_fd=fd)


def _state(root: Path, rel: str) -> State:
    """What is at rel under root, judged without following any link."""
    fd = _parent(root, rel, create=False)
    if fd is None:
        return _blocked(root, rel)
    name = rel.rsplit("/", 1)[-1]
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.fsencode(os.readlink(name, dir_fd=fd)), 0)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            return ("other", b"", 0)
        f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        with os.fdopen(f, "rb") as handle:
            return ("file", handle.read(), stat.S_IMODE(st.st_mode))
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def _blocked(root: Path, rel: str) -> State:
    """None when rel's folder is simply missing; ("other", ...) when a link or file is in its way."""
    p = root
    for name in rel.split("/")[:-1]:
        p = p / name
        if p.is_symlink() or (p.exists() and not p.is_dir()):
            return ("other", b"", 0)
        if not p.exists():
            return None
    return None


def _put(root: Path, rel: str, state: State) -> None:
    """Make rel under root hold state: replace whatever is there, never writing through a link."""
    # A path that must be absent is only removed where it can be reached without a link: a link
    # above it is above a frozen file too, and that file's restore replaces it.
    fd = _parent(root, rel, create=state is not None)
    if fd is None:
        return
    name = rel.rsplit("/", 1)[-1]
    try:
        _remove(fd, name)
        if state is None:
            return
        kind, data, mode = state
        if kind == "link":
            os.symlink(os.fsdecode(data), name, dir_fd=fd)
        elif kind == "file":
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            f = os.open(name, flags, mode or 0o644, dir_fd=fd)
            with os.fdopen(f, "wb") as handle:
                handle.write(data)
    finally:
        os.close(fd)


class Frozen:
    """The acceptance test's files as they were at the red gate; changes to them are refused.

    `paths` are files or folders (everything under a folder is frozen, additions included);
    `harness` are single files (conftest.py, pytest's configuration) frozen as they were,
    present or absent: one the agent adds is removed again.
    """

    def __init__(self, worktree: Path, paths: list[str], harness: list[str] | tuple[str, ...] = ()) -> None:
        self.worktree = worktree
        self.roots = paths
        folders = [r for r in paths if (worktree / r).is_dir() and not (worktree / r).is_symlink()]
        self.harness = sorted(
            h for h in harness if h not in paths and not any(h.startswith(f"{d}/") for d in folders)
        )
        self.snapshot: dict[str, State] = self._read()

    @property
    def present(self) -> list[str]:
        """The frozen roots and the harness files that exist, for people and the agent's guard."""
        return sorted({*self.roots, *(h for h in self.harness if self.snapshot.get(h) is not None)})

    def _walk(self, rel: str) -> list[str]:
        """rel itself, or every entry under it when it is a folder (links are not followed)."""
        top = self.worktree / rel
        if top.is_symlink() or not top.is_dir():
            return [rel]
        found = []
        for folder, dirs, files in os.walk(top, followlinks=False):
            dirs[:] = [d for d in dirs if d not in _SKIP]
            base = Path(folder).relative_to(self.worktree)
            links = [d for d in dirs if (Path(folder) / d).is_symlink()]
            found += [(base / f).as_posix() for f in [*files, *links] if not f.endswith((".pyc", ".pyo"))]
        return found

    def _read(self) -> dict[str, State]:
        found: dict[str, State] = {h: _state(self.worktree, h) for h in self.harness}
        for root in self.roots:
            for rel in self._walk(root):
                found[rel] = _state(self.worktree, rel)
        return found

    def tampered(self) -> list[str]:
        """Paths under the frozen roots that were changed, added or deleted since the snapshot."""
        now = self._read()
        now.update({p: _state(self.worktree, p) for p in self.snapshot if p not in now})
        return sorted(p for p in {*now, *self.snapshot} if now.get(p) != self.snapshot.get(p))

    def restore(self) -> list[str]:
        """Put the frozen files back as they were; the paths that had been tampered with."""
        changed: set[str] = set()
        for _ in range(3):  # a second pass finds what the first uncovered (a folder under a link)
            now = self.tampered()
            if not now:
                return sorted(changed)
            changed.update(now)
            # Shallowest first: a link where a folder was is removed before the files under it.
            for rel in sorted(now, key=lambda r: r.count("/")):
                _put(self.worktree, rel, self.snapshot.get(rel))
        msg = f"{self.worktree}: cannot restore the acceptance test's files: {', '.join(self.tampered())}"
        raise StateError(msg)

    def digest(self) -> str:
        """One hash of the frozen files, recorded with the red gate's evidence."""
        h = hashlib.sha256()
        for rel in sorted(self.snapshot):
            state = self.snapshot[rel]
            if state is not None:
                h.update(rel.encode() + b"\0" + state[1] + b"\0")
        return h.hexdigest()[:16]
