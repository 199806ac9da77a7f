"""Every git call goes through here: `git -C <path>`, machine formats only.

Each one runs with what the repository configures git to run switched off (boss.core.gitsafe):
hooks, fsmonitor, filter and merge drivers, external diffs and textconv, signing, editors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from boss.core import gitsafe
from boss.core.errors import GitError, InputError
from boss.core.proc import Result, run

# Set by hooks and nested repos; they would point git at the wrong repository (pre-commit #300).
_SCRUB = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for git: inherited, minus variables that redirect it, plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    if extra:
        env.update(extra)
    return env


def own_env(extra: dict[str, str] | None = None, path: Path | str | None = None) -> dict[str, str]:
    """The environment of boss's own git commands at path: git_env with what the repository
    configures git to run switched off (boss.core.gitsafe), plus extra."""
    env = gitsafe.environment(git_env(), path)
    if extra:
        env.update(extra)
    return env


def git(
    path: Path | str,
    *args: str,
    check: bool = True,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """Run `git -C path args...`; raise GitError on failure when check."""
    return run(
        ["git", "-C", str(path), *gitsafe.with_diff_flags(args)],
        env=own_env(env, path),
        check=check,
        input_text=input_text,
        error=GitError,
    )


def out(path: Path | str, *args: str) -> str:
    """Stdout of a git command, stripped."""
    return git(path, *args).stdout.strip()


def zsplit(text: str) -> list[str]:
    """Split -z output into its fields."""
    return [p for p in text.split("\0") if p]


def toplevel(path: Path) -> Path:
    """The root of the repository (or worktree) containing path; InputError outside git."""
    res = git(path, "rev-parse", "--show-toplevel", check=False)
    if res.returncode != 0:
        msg = f"{path}: not inside a git repository (run `git init` first)"
        raise InputError(msg)
    return Path(res.stdout.strip())


def main_root(path: Path) -> Path:
    """The main checkout's root, also from inside a linked worktree; InputError outside git."""
    res = git(path, "rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir", check=False)
    lines = res.stdout.split("\n")
    if res.returncode != 0 or len(lines) < 2:
        msg = f"{path}: not inside a git repository (run `git init` first)"
        raise InputError(msg)
    common = Path(lines[1])
    return common.parent if common.name == ".git" else Path(lines[0])


def common_dir(path: Path) -> Path:
    """The repository's common git dir (shared by all worktrees)."""
    return Path(out(path, "rev-parse", "--path-format=absolute", "--git-common-dir"))


def rev(path: Path | str, ref: str) -> str | None:
    """The commit a ref names, or None when it names none."""
    res = git(path, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return res.stdout.strip() or None if res.returncode == 0 else None


def head(path: Path | str) -> str:
    """The commit checked out at path."""
    return out(path, "rev-parse", "HEAD")


def current_branch(path: Path | str) -> str | None:
    """The branch checked out at path, None when detached."""
    res = git(path, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return res.stdout.strip() or None if res.returncode == 0 else None


def branch_exists(path: Path | str, branch: str) -> bool:
    """True when refs/heads/<branch> exists."""
    return rev(path, f"refs/heads/{branch}") is not None


def valid_branch_name(name: str) -> bool:
    """Judge a branch name as `git check-ref-format --branch` does."""
    res = run(["git", "check-ref-format", "--branch", name], check=False, env=own_env())
    return res.returncode == 0 and not name.startswith("-")


def is_ancestor(path: Path | str, ancestor: str, descendant: str) -> bool:
    """True when ancestor is reachable from descendant."""
    res = git(path, "merge-base", "--is-ancestor", ancestor, descendant, check=False)
    return res.returncode == 0


def changed_paths(path: Path | str, base: str, target: str = "HEAD") -> list[str]:
    """Paths changed between base and target (both sides of renames), from -z output."""
    text = git(path, "diff", "--name-status", "-z", "--no-renames", base, target).stdout
    fields = zsplit(text)
    return sorted({fields[i + 1] for i in range(0, len(fields) - 1, 2)})


def worktree_changes(path: Path | str) -> list[str]:
    """Uncommitted paths in a worktree: modified, deleted, untracked and both sides of renames."""
    text = git(path, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames").stdout
    return sorted({entry[3:] for entry in zsplit(text) if len(entry) > 3})


def commit_all(path: Path | str, message: str) -> str | None:
    """Stage and commit everything in a worktree; the new commit, or None when nothing changed."""
    git(path, "add", "--all")
    # No auto-maintenance after each worker's commit: N workers would each start a gc.
    res = git(
        path, "-c", "maintenance.auto=false", "-c", "gc.auto=0", "commit", "--quiet", "--no-verify",
        "-m", message, env=identity_env(), check=False,
    )  # fmt: skip
    if res.returncode != 0:
        if "nothing to commit" in res.stdout + res.stderr or "nothing added" in res.stdout:
            return None
        raise GitError(["git", "-C", str(path), "commit"], res.returncode, res.stdout, res.stderr)
    return head(path)


def identity_env() -> dict[str, str]:
    """A fallback author and committer for commits the tool makes, only where git has none.

    A configured user.name/user.email (or GIT_* variables) always wins, so the user's
    identity is kept; a fresh machine without one still gets commits instead of an error.
    """
    global _IDENTITY
    names = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
    if all(os.environ.get(n) for n in names):
        return {}
    if _IDENTITY is None:
        configured = {
            key: run(["git", "config", "--get", f"user.{key}"], check=False, env=own_env()).stdout.strip()
            for key in ("name", "email")
        }
        env: dict[str, str] = {}
        for role in ("AUTHOR", "COMMITTER"):
            if not os.environ.get(f"GIT_{role}_NAME") and not configured["name"]:
                env[f"GIT_{role}_NAME"] = "boss"
            if not os.environ.get(f"GIT_{role}_EMAIL") and not configured["email"]:
                env[f"GIT_{role}_EMAIL"] = "boss@localhost"
        _IDENTITY = env
    return dict(_IDENTITY)


_IDENTITY: dict[str, str] | None = None


def forget_identity() -> None:
    """identity_env() asks git again next time (its answer is kept for the process)."""
    global _IDENTITY
    _IDENTITY = None


def identity_config_env(path: Path | str) -> dict[str, str]:
    """user.name and user.email as command-scope config (GIT_CONFIG_*) where git at path has
    none, for a program that asks `git config` rather than reading GIT_AUTHOR_* (aider, which
    would otherwise write placeholders into the repository's config)."""
    fallback = {"name": "boss", "email": "boss@localhost"}
    env: dict[str, str] = {}
    count = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
    for key in ("name", "email"):
        if git(path, "config", "--get", f"user.{key}", check=False).stdout.strip():
            continue
        env[f"GIT_CONFIG_KEY_{count}"] = f"user.{key}"
        env[f"GIT_CONFIG_VALUE_{count}"] = os.environ.get(f"GIT_AUTHOR_{key.upper()}") or fallback[key]
        count += 1
    return {**env, "GIT_CONFIG_COUNT": str(count)} if env else {}


def reset_hard(path: Path | str, commit: str) -> None:
    """Put a worktree back to commit exactly: tracked files reset, untracked files removed."""
    git(path, "reset", "--quiet", "--hard", commit)
    clean(path)


def clean(path: Path | str) -> None:
    """Remove the worktree's untracked files; ignored ones stay (what setup made, copied files)."""
    git(path, "clean", "-fdq")


def update_ref(path: Path | str, ref: str, new: str, old: str | None = None) -> bool:
    """Move ref to new, atomically and only if it still points at old (when given)."""
    args = ["update-ref", ref, new] + ([old] if old is not None else [])
    return git(path, *args, check=False).returncode == 0


def update_refs(path: Path | str, moves: dict[str, str | None]) -> None:
    """Move each ref to its commit (None: delete it) in one atomic transaction, one git run;
    GitError when any cannot move (then none did)."""
    if not moves:
        return
    bad = [ref for ref in moves if "\0" in ref or "\n" in ref]  # no ref name holds them
    if bad:  # refused as git refuses a bad name, never sent to it
        raise GitError(["git", "update-ref", "-z", "--stdin"], 128, "", f"fatal: not a ref name: {bad[0]!r}")
    lines = [f"update {ref}\0{new}\0\0" if new else f"delete {ref}\0\0" for ref, new in moves.items()]
    git(path, "update-ref", "-z", "--stdin", input_text="".join(lines))


# What this process has already excluded: forked workers inherit the pool's, and skip the git call.
_EXCLUDED: set[tuple[Path, tuple[str, ...]]] = set()


def add_exclude(repo: Path, patterns: list[str], git_dir: Path | None = None) -> None:
    """Append patterns to .git/info/exclude once each, never touching the tracked .gitignore
    (git_dir: the git folder of a checkout that has no `.git` of its own, read every time)."""
    key = (repo, tuple(patterns))
    if key in _EXCLUDED:
        return
    exclude = (git_dir or common_dir(repo)) / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    existing = exclude.read_text().splitlines() if exclude.exists() else []
    missing = [p for p in patterns if p not in existing]
    if missing:
        with exclude.open("a") as f:
            if existing and existing[-1] != "":
                f.write("\n")
            f.write("".join(f"{p}\n" for p in missing))
    if git_dir is None:
        _EXCLUDED.add(key)


def worktree_add(repo: Path, path: Path, branch: str, start: str) -> None:
    """Create a worktree at path on a new branch started at start (or on the existing branch)."""
    if branch_exists(repo, branch):
        git(repo, "worktree", "add", "--quiet", str(path), branch)
    else:
        git(repo, "worktree", "add", "--quiet", "-b", branch, str(path), start)


def worktree_remove(repo: Path, path: Path) -> None:
    """Remove a worktree (forcefully) and prune git's records of missing ones."""
    git(repo, "worktree", "remove", "--force", str(path), check=False)
    git(repo, "worktree", "prune")


def worktrees(repo: Path) -> dict[Path, str | None]:
    """Registered worktrees: path to branch (None when detached)."""
    text = git(repo, "worktree", "list", "--porcelain", "-z").stdout
    result: dict[Path, str | None] = {}
    current: Path | None = None
    for field in text.split("\0"):
        if field.startswith("worktree "):
            current = Path(field[len("worktree ") :])
            result[current] = None
        elif field.startswith("branch ") and current is not None:
            result[current] = field[len("branch refs/heads/") :]
    return result


_REF_BAD_CHAR = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def branch_name_problem(name: str) -> str | None:
    """Why `git check-ref-format --branch` would refuse name, or None; pure Python, no git run.

    Mirrors git's refs.c rules for refs/heads/<name> so that validating a 200-worker manifest
    does not start 200 processes; tests compare it with the real command.
    """
    bad = _REF_BAD_CHAR.search(name)
    problem = None
    if not name:
        problem = "it is empty"
    elif name.startswith("-"):
        problem = "it starts with '-'"
    elif name == "HEAD":
        problem = "HEAD is reserved"
    elif bad:
        problem = f"it contains {bad.group()!r}"
    elif ".." in name or "@{" in name:
        problem = f"it contains {'..' if '..' in name else '@{'!r}"
    elif name.endswith("."):
        problem = "it ends with '.'"
    for part in name.split("/") if problem is None else ():
        if not part:
            problem = "it has an empty part (a leading, trailing or double '/')"
        elif part.startswith("."):
            problem = f"its part {part!r} starts with '.'"
        elif part.endswith(".lock"):
            problem = f"its part {part!r} ends with '.lock'"
        if problem:
            break
    return problem


def ls_files(path: Path | str) -> list[str]:
    """Tracked paths of the checkout at path, repo-relative POSIX, from -z output."""
    return zsplit(git(path, "ls-files", "-z", "--full-name").stdout)


def worktree_add_detached(repo: Path, path: Path, commit: str) -> None:
    """Create a throwaway worktree at path with commit checked out on a detached HEAD."""
    git(repo, "worktree", "add", "--quiet", "--detach", str(path), commit)


def git_dir(path: Path | str) -> Path:
    """The git dir of the checkout at path (a linked worktree has its own)."""
    return Path(out(path, "rev-parse", "--absolute-git-dir"))


def refs_at(repo: Path | str, patterns: list[str], *git_args: str) -> dict[str, str]:
    """{ref: commit} of the refs for-each-ref matches with patterns (a ref, or a prefix: refs/heads/),
    in one git run; git_args go before the command (`--git-dir=...` for a bare mirror)."""
    fmt = "--format=%(refname)%00%(objectname)"
    text = git(repo, *git_args, "for-each-ref", fmt, *patterns).stdout
    return dict(line.split("\0", 1) for line in text.splitlines() if "\0" in line)


def ref_commits(repo: Path | str, refs: list[str]) -> dict[str, str]:
    """The commit each of these full ref names points at, in one git run; absent ones left out."""
    if not refs:
        return {}
    found = refs_at(repo, refs)
    return {ref: found[ref] for ref in refs if ref in found}  # for-each-ref also matches prefixes


def branch_heads(repo: Path | str) -> dict[str, str]:
    """Every local branch and the commit it points at, in one git run."""
    return {ref.removeprefix("refs/heads/"): commit for ref, commit in refs_at(repo, ["refs/heads/"]).items()}


def refs_containing(repo: Path | str, commit: str, refs: list[str]) -> set[str]:
    """Those of refs (full names) whose history contains commit."""
    if not refs:
        return set()
    text = git(repo, "for-each-ref", "--format=%(refname)", "--contains", commit, *refs).stdout
    return set(text.splitlines()) & set(refs)


def refs_merged(repo: Path | str, commit: str, refs: list[str]) -> set[str]:
    """Those of refs (full names) already reachable from commit (merged into it)."""
    if not refs:
        return set()
    text = git(repo, "for-each-ref", "--format=%(refname)", "--merged", commit, *refs).stdout
    return set(text.splitlines()) & set(refs)


def refs_under(repo: Path | str, prefix: str) -> list[str]:
    """Full names of the refs below prefix (e.g. refs/boss/)."""
    return git(repo, "for-each-ref", "--format=%(refname)", prefix).stdout.splitlines()


def delete_ref(repo: Path | str, ref: str) -> bool:
    """Delete a ref (a branch is deleted with delete_branch); True when it went."""
    return git(repo, "update-ref", "-d", ref, check=False).returncode == 0


def delete_branch(repo: Path | str, branch: str) -> bool:
    """Delete a local branch whatever it holds; False when git refuses (e.g. it is checked out)."""
    return git(repo, "branch", "-D", "--quiet", branch, check=False).returncode == 0


def is_clean(path: Path | str) -> bool:
    """True when the checkout at path has no changes to tracked files (staged or not)."""
    return git(path, "status", "--porcelain", "-z", "--untracked-files=no").stdout == ""


def worktree_add_branch(repo: Path, path: Path, branch: str, start: str) -> None:
    """Create a worktree at path on branch, (re)set to start."""
    git(repo, "worktree", "add", "--quiet", "--force", "-B", branch, str(path), start)


def checkout_branch(path: Path | str, branch: str, start: str) -> None:
    """Check out branch (re)set to start in the worktree at path, discarding local changes."""
    git(path, "checkout", "--quiet", "--force", "-B", branch, start)
