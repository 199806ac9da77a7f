"""The shared git directory around an agent's run: what it was before, and putting it back.

An agent works in its own worktree, but the git directory behind it is the repository's:
its config, hooks and info/ are read by every later git command, boss's and the user's, and
its refs are the user's branches and tags. `snapshot` records them (files read directly, the
refs in one `git for-each-ref`); `restore` puts back whatever moved and names each change.

Watched: `config`, `config.worktree`, `HEAD` (the main checkout's), `commondir`, `shallow`,
`objects/info/alternates`, everything under `hooks/` and `info/`, each existing linked
worktree's `config.worktree`, `commondir` and `gitdir`, the run's own worktree's `.git` file,
and every ref except those the run may move itself (`free`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from boss.core import git, gitsafe
from boss.core.errors import StateError

FILES = ("config", "config.worktree", "HEAD", "commondir", "shallow", "objects/info/alternates")
TREES = ("hooks", "info")
WORKTREE_FILES = ("config.worktree", "commondir", "gitdir")

# (kind, content, permission bits); kind is "file", "link" (content: the target) or "dir".
Entry = tuple[str, bytes, int]


@dataclass(frozen=True)
class Snapshot:
    """The watched part of a repository's git directory at one moment."""

    repo: Path
    common: Path
    files: dict[Path, Entry]
    refs: dict[str, tuple[str, str]]  # full name -> (object, symbolic target or "")
    free: tuple[str, ...] = ()
    admin: tuple[str, ...] = ()  # the linked worktrees' folders under worktrees/ at the time
    worktree_git: Path | None = None
    taken_at: int = 0  # time.time_ns() when it was taken


def snapshot(repo: Path, *, free: Iterable[str] = (), worktree: Path | None = None) -> Snapshot:
    """Record repo's git directory; refs named in free (a name, or a prefix ending in /) are
    not watched, nor is anything but its own `.git` file in worktree."""
    taken_at = time.time_ns()
    dirs = gitsafe.git_dirs(repo)
    if dirs is None:
        msg = f"{repo}: not inside a git repository"
        raise StateError(msg)
    common = dirs[1].resolve()
    admin = _admin_ids(common)
    worktree_git = worktree / ".git" if worktree is not None else None
    files = _read(common, admin, worktree_git)
    refs = _refs(repo, tuple(free))
    return Snapshot(repo, common, files, refs, tuple(free), admin, worktree_git, taken_at)


def restore(before: Snapshot, *, free: Iterable[str] = ()) -> list[str]:
    """Put back everything watched that moved since before; one line per change (empty: none).

    Refs in free (as in snapshot) are left as they are now, moved or not."""
    common, repo = before.common, before.repo
    admin = tuple(a for a in before.admin if (common / "worktrees" / a).is_dir())  # gone: pruned
    wt_git = before.worktree_git
    wt_git = wt_git if wt_git is not None and wt_git.parent.is_dir() else None  # gone: removed
    now = _read(common, admin, wt_git)
    watched = {p: e for p, e in before.files.items() if _still_watched(p, common, admin, wt_git)}
    changes: list[str] = []
    for path in sorted(set(watched) | set(now)):
        old, new = watched.get(path), now.get(path)
        if old == new:
            continue
        how = "added" if old is None else "deleted" if new is None else "changed"
        changes.append(f"{_show(path, repo)} {how}{_put_back(path, old)}")
    spared = (*before.free, *free)
    now_refs = _refs(repo, spared)
    old_refs = _spare(before.refs, spared)
    for ref in sorted(set(old_refs) | set(now_refs)):
        was, current = old_refs.get(ref), now_refs.get(ref)
        if was != current:
            changes.append(_describe(ref, was, current) + _restore_ref(repo, ref, was, current))
    return changes


def _admin_ids(common: Path) -> tuple[str, ...]:
    with contextlib.suppress(OSError):
        entries = os.scandir(common / "worktrees")
        return tuple(sorted(e.name for e in entries if e.is_dir(follow_symlinks=False)))
    return ()


def _read(common: Path, admin: tuple[str, ...], worktree_git: Path | None) -> dict[Path, Entry]:
    found: dict[Path, Entry] = {}
    paths = [common / f for f in FILES]
    paths += [common / "worktrees" / a / f for a in admin for f in WORKTREE_FILES]
    paths += [worktree_git] if worktree_git is not None else []
    for path in paths:
        entry = _entry(path)
        if entry is not None:
            found[path] = entry
    for tree in TREES:
        _walk(common / tree, found)
    return found


def _entry(path: Path) -> Entry | None:
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.fsencode(path.readlink()), 0)
        if stat.S_ISDIR(st.st_mode):
            return ("dir", b"", stat.S_IMODE(st.st_mode))
        return ("file", path.read_bytes(), stat.S_IMODE(st.st_mode))
    except OSError:
        return None


def _walk(path: Path, found: dict[Path, Entry]) -> None:
    entry = _entry(path)
    if entry is None:
        return
    found[path] = entry
    if entry[0] == "dir":
        with contextlib.suppress(OSError):
            for child in os.scandir(path):
                _walk(path / child.name, found)


def _still_watched(path: Path, common: Path, admin: tuple[str, ...], wt_git: Path | None) -> bool:
    if not path.is_relative_to(common):
        return path == wt_git
    parts = path.relative_to(common).parts
    return len(parts) < 3 or parts[0] != "worktrees" or parts[1] in admin


def _show(path: Path, repo: Path) -> str:
    with contextlib.suppress(ValueError):
        return path.relative_to(repo).as_posix()
    return str(path)


def _put_back(path: Path, old: Entry | None) -> str:
    """Make path what it was (old None: remove it); "" or why it could not be done."""
    try:
        if old is not None and old[0] == "dir" and path.is_dir() and not path.is_symlink():
            path.chmod(old[2])  # only its permissions changed: what is inside is compared on its own
            return ""
        _remove(path)
        if old is not None:
            _create(path, old)
    except OSError as e:
        return f" (could not be put back: {e.strerror or e})"
    return ""


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _create(path: Path, entry: Entry) -> None:
    kind, content, mode = entry
    if path.parent.is_symlink():
        msg = f"{path.parent} is a symbolic link"
        raise OSError(0, msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "link":
        path.symlink_to(os.fsdecode(content))
    elif kind == "dir":
        path.mkdir()
        path.chmod(mode)
    else:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)


def _refs(repo: Path, free: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    fmt = "--format=%(refname)%00%(objectname)%00%(symref)"
    found: dict[str, tuple[str, str]] = {}
    for line in git.git(repo, "for-each-ref", fmt).stdout.splitlines():
        name, _, rest = line.partition("\0")
        obj, _, target = rest.partition("\0")
        found[name] = (obj, target)
    return _spare(found, free)


def _spare(refs: dict[str, tuple[str, str]], free: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """refs without those free names (a name, or a prefix ending in /)."""
    return {
        n: v
        for n, v in refs.items()
        if not any(n == f or (f.endswith("/") and n.startswith(f)) for f in free)
    }


def _describe(ref: str, was: tuple[str, str] | None, now: tuple[str, str] | None) -> str:
    if was is None:
        return f"{ref} added at {now[0][:10] if now else '?'}"
    if now is None:
        return f"{ref} deleted (was {was[0][:10]})"
    if was[1] != now[1]:
        return f"{ref} now points to {now[1] or now[0][:10]} (was {was[1] or was[0][:10]})"
    return f"{ref} moved from {was[0][:10]} to {now[0][:10]}"


def _restore_ref(repo: Path, ref: str, was: tuple[str, str] | None, now: tuple[str, str] | None) -> str:
    """Put a ref back (only if it is still as seen: compare and swap); "" or why not."""
    why = "boss: put back what agent code changed"  # the reflog's message
    if was is None:
        args = ["update-ref", "-m", why, "--no-deref", "-d", ref, *([now[0]] if now else [])]
    elif was[1]:
        args = ["symbolic-ref", "-m", why, ref, was[1]]
    else:
        expected = "0" * len(was[0]) if now is None else "" if now[1] else now[0]
        args = ["update-ref", "-m", why, "--no-deref", ref, was[0], *([expected] if expected else [])]
    ok = git.git(repo, *args, check=False).returncode == 0
    return "" if ok else " (could not be put back)"
