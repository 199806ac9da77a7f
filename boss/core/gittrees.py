"""Trees, merges and commits: the git plumbing the ceremony, review and checkpoints build with.

Merges predicted without a worktree (`merge-tree`), trees read and written through a private
index, commits made from trees, and the few porcelain merges the integration worktree runs.
Every call goes through boss.core.git, so the same safety switches apply.
"""

from __future__ import annotations

from pathlib import Path

from boss.core import git
from boss.core.errors import GitError
from boss.core.proc import Result


def merge_no_ff(path: Path | str, commit: str, message: str) -> Result:
    """Merge commit into the branch checked out at path with a merge commit; the raw result.

    No automatic gc or maintenance mid-ceremony (it would start a process per merge), no stat.
    """
    return git.git(
        path, "-c", "maintenance.auto=false", "-c", "gc.auto=0", "merge", "--no-ff", "--no-edit",
        "--no-verify", "--no-stat", "--quiet", "-m", message, commit, check=False, env=git.identity_env(),
    )  # fmt: skip


def unmerged_paths(path: Path | str) -> list[str]:
    """Paths left in conflict by a merge in the worktree at path."""
    return sorted(set(git.zsplit(git.git(path, "diff", "--name-only", "-z", "--diff-filter=U").stdout)))


def merge_abort(path: Path | str) -> None:
    """Abort a merge in progress at path (nothing happens when there is none)."""
    git.git(path, "merge", "--abort", check=False)


def rev_parse_many(path: Path | str, *revs: str) -> list[str]:
    """The object names of several revisions in one git run."""
    return git.out(path, "rev-parse", *revs).splitlines()


def merge_tree(repo: Path | str, ours: str, theirs: str) -> tuple[str, list[str]]:
    """Predict a merge without touching a worktree, the index or a ref: (tree, conflicted paths)."""
    res = git.git(
        repo, "merge-tree", "--write-tree", "--name-only", "-z", "--no-messages", ours, theirs,
        check=False,
    )  # fmt: skip
    if res.returncode not in (0, 1):
        raise GitError(["git", "merge-tree", ours, theirs], res.returncode, res.stdout, res.stderr)
    fields = res.stdout.split("\0")
    conflicts: list[str] = []
    for name in fields[1:]:
        if not name:
            break
        conflicts.append(name)
    return fields[0].strip(), sorted(set(conflicts))


def diff_names_many(repo: Path | str, pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Paths changed between each (a, b) pair of commits, in one git run (`diff-tree --stdin`).

    A line that is not an object name is echoed by diff-tree, so `#<i>` markers tell which
    pair each path belongs to (pairs without changes print nothing at all).
    """
    if not pairs:
        return []
    feed = "".join(f"#{i}\n{b} {a}\n" for i, (a, b) in enumerate(pairs))
    text = git.git(
        repo, "diff-tree", "--stdin", "-r", "--name-only", "-z", "--no-renames", "--no-commit-id",
        input_text=feed,
    ).stdout  # fmt: skip
    result: list[set[str]] = [set() for _ in pairs]
    current = 0
    for field in text.split("\0"):
        while field.startswith("#") and "\n" in field:
            marker, rest = field[1:].split("\n", 1)
            if not marker.isdigit():
                break
            current, field = int(marker), rest
        if field:
            result[current].add(field)
    return [sorted(s) for s in result]


def index_at(path: Path | str, commit: str) -> bool:
    """True when the index and the tracked files of the checkout at path are exactly commit's."""
    staged = git.git(path, "diff", "--cached", "--quiet", commit, "--", check=False).returncode
    return staged == 0 and git.git(path, "diff", "--quiet", check=False).returncode == 0


def read_tree_update(path: Path | str, old: str, new: str, *, dry_run: bool = False) -> bool:
    """Move a checkout's index and files from old to new as a fast-forward does; False if refused."""
    args = ["read-tree", "-m", "-u", *(["-n"] if dry_run else []), old, new]
    return git.git(path, *args, check=False).returncode == 0


def parents(repo: Path | str, commit: str) -> list[str]:
    """The parents of a commit."""
    return git.out(repo, "rev-list", "--parents", "-n", "1", commit).split()[1:]


def tree_of(repo: Path | str, commit: str) -> str:
    """The tree a commit records."""
    return git.out(repo, "rev-parse", f"{commit}^{{tree}}")


def diff_text(repo: Path | str, a: str, b: str, paths: list[str]) -> str:
    """The plain-text diff between two commits, limited to paths."""
    return git.git(repo, "diff", "--no-color", "--no-ext-diff", a, b, "--", *paths).stdout


def tree_restoring(repo: Path | str, head: str, source: str, paths: list[str]) -> str:
    """A tree: head's, with each of paths put back as in source (removed where source has none).

    Built in a temporary index, so no worktree, index or ref of the repository changes.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="boss-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.git(repo, "read-tree", head, env=env)
        listing = git.git(repo, "ls-tree", "-z", "-r", "--full-tree", source, "--", *paths).stdout
        found: dict[str, str] = {}
        for entry in git.zsplit(listing):
            meta, _, name = entry.partition("\t")
            mode, _kind, sha = meta.split()
            found[name] = f"{mode} {sha}"
        zero = "0" * len(head)
        lines = [f"{found.get(p, f'0 {zero}')}\t{p}" for p in paths]
        git.git(repo, "update-index", "-z", "--index-info", input_text="\0".join(lines) + "\0", env=env)
        return git.git(repo, "write-tree", env=env).stdout.strip()


def commit_tree(repo: Path | str, tree: str, parent_commits: list[str], message: str) -> str:
    """A new commit of tree with these parents (no ref moves); its name."""
    args = ["commit-tree", tree, *[a for p in parent_commits for a in ("-p", p)], "-m", message]
    return git.git(repo, *args, env=git.identity_env()).stdout.strip()


def commit_and_tree(path: Path | str, ref: str, common: Path) -> tuple[str, str]:
    """The commit a full ref names and that commit's tree.

    Read from the files git has just written (a loose ref and a loose commit object in the
    common dir), which spares one git process per merge in the ceremony; asked of git
    whenever those files are not there or not as expected (packed refs, packs, reftable).
    """
    import zlib

    commit = tree = None
    try:
        text = (common / ref).read_text(encoding="ascii").strip()
        if len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text):
            commit = text
            raw = zlib.decompress((common / "objects" / text[:2] / text[2:]).read_bytes())
            header, _, body = raw.partition(b"\0")
            if header.startswith(b"commit ") and body.startswith(b"tree "):
                tree = body[5 : body.index(b"\n")].decode("ascii")
    except (OSError, ValueError, zlib.error):
        commit = tree = None
    if commit and tree:
        return commit, tree
    found = rev_parse_many(path, ref, f"{ref}^{{tree}}")
    return found[0], found[1]


def tree_entries(repo: Path | str, commit: str, paths: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """The files commit records (those at or under paths, when given): path -> (mode, object)."""
    listing = git.git(repo, "ls-tree", "-z", "-r", "--full-tree", commit, "--", *(paths or [])).stdout
    found: dict[str, tuple[str, str]] = {}
    for entry in git.zsplit(listing):
        meta, _, name = entry.partition("\t")
        mode, _kind, sha = meta.split()
        found[name] = (mode, sha)
    return found


def write_entries(path: Path | str, entries: dict[str, tuple[str, str]]) -> None:
    """Write these files (path -> (mode, object)) into the checkout at path; its index is untouched.

    Through a temporary index, so a skip-worktree bit or staged change of the checkout stays.
    """
    import tempfile

    if not entries:
        return
    with tempfile.TemporaryDirectory(prefix="boss-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        lines = [f"{mode} {sha}\t{name}" for name, (mode, sha) in sorted(entries.items())]
        git.git(path, "update-index", "-z", "--index-info", input_text="\0".join(lines) + "\0", env=env)
        git.git(path, "checkout-index", "--all", "--force", env=env)
