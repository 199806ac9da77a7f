"""The refs a worker owns on the shared remote, and how they move: only by compare-and-swap.

A worker's branch, its refs/boss/<plan>/<id>/ refs (start, head, onto, before-redo) and its
checkpoints are the whole of what a run changes in git. Both ends push them with
`git push --atomic --force-with-lease=<ref>:<expected>` for each ref: a push whose expected
values no longer hold (a newer run pushed meanwhile, a late duplicate of a lost node) moves
nothing at all.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from boss.core import git
from boss.core.errors import GitError, StateError
from boss.core.proc import Result

# boss's own git has every transport off (boss.core.gitsafe); the engine's talk to the remote the
# user named needs the ones a shared remote is reached by: a path, git://, ssh. Those three only
# (ext:: and the rest stay off), and everything else gitsafe switches off stays off.
_ALLOWED = ("protocol.file.allow", "protocol.git.allow", "protocol.ssh.allow")


def remote_git(path: Path | str, *args: str, check: bool = True) -> Result:
    """git at path, with the transports to a shared remote allowed."""
    env = git.own_env(None, path)
    count = int(env.get("GIT_CONFIG_COUNT", "0"))
    extra = {"GIT_CONFIG_COUNT": str(count + len(_ALLOWED))}
    for n, key in enumerate(_ALLOWED, start=count):
        extra[f"GIT_CONFIG_KEY_{n}"], extra[f"GIT_CONFIG_VALUE_{n}"] = key, "always"
    for key, value in env.items():
        if key.startswith("GIT_CONFIG_KEY_") and value == "core.sshCommand":
            extra["GIT_CONFIG_VALUE_" + key.removeprefix("GIT_CONFIG_KEY_")] = "ssh"
    return git.git(path, *args, check=check, env=extra)


def owned_prefixes(plan: str, worker_id: str) -> tuple[str, str]:
    """The ref prefixes a worker's run may move besides its branch."""
    return f"refs/boss/{plan}/{worker_id}/", f"refs/boss/checkpoints/{plan}/{worker_id}/"


def owned(plan: str, worker_id: str, branch: str, ref: str) -> bool:
    """Whether ref is one of the worker's own (nothing a node reports outside them is taken)."""
    return ref == f"refs/heads/{branch}" or ref.startswith(owned_prefixes(plan, worker_id))


def local_refs(repo: Path | str, plan: str, worker_id: str, branch: str) -> dict[str, str]:
    """{ref: commit} of the worker's refs in repo."""
    found = git.refs_at(repo, [f"refs/heads/{branch}", *owned_prefixes(plan, worker_id)])
    return {ref: commit for ref, commit in found.items() if owned(plan, worker_id, branch, ref)}


def remote_refs(repo: Path | str, remote: str, patterns: list[str]) -> dict[str, str]:
    """{ref: commit} on the remote for the patterns (`git ls-remote`); StateError when unreachable."""
    res = remote_git(repo, "ls-remote", "--", remote, *patterns, check=False)
    if res.returncode != 0:
        why = (res.stderr.strip().splitlines() or ["git ls-remote failed"])[-1]
        msg = f"the shared remote {remote} cannot be read: {why}"
        raise StateError(msg)
    found = {}
    for line in res.stdout.splitlines():
        commit, _, ref = line.partition("\t")
        if ref and not ref.endswith("^{}"):
            found[ref] = commit
    return found


def remote_owned(repo: Path | str, remote: str, plan: str, worker_id: str, branch: str) -> dict[str, str]:
    """{ref: commit} of the worker's refs on the remote."""
    patterns = [f"refs/heads/{branch}", *(p + "*" for p in owned_prefixes(plan, worker_id))]
    found = remote_refs(repo, remote, patterns)
    return {ref: commit for ref, commit in found.items() if owned(plan, worker_id, branch, ref)}


def to_take(
    repo: Path | str, remote: str, whose: tuple[str, str, str], said: object, held: dict[str, str]
) -> dict[str, str]:
    """The refs of worker (plan, id, branch) to take from the remote after its node's run: the
    names the node says its compare-and-swap push left there (its own only; fetch_into takes the
    remote's values and fails where they differ), or the remote's list when the node says none, or
    leaves out a ref `held` here (a ref is dropped here only on the remote's word)."""
    plan, worker_id, branch = whose
    if isinstance(said, dict) and all(isinstance(r, str) and isinstance(c, str) for r, c in said.items()):
        named = {ref: commit for ref, commit in said.items() if owned(plan, worker_id, branch, ref)}
        if all(ref in named for ref in held):
            return named
    return remote_owned(repo, remote, plan, worker_id, branch)


def push_cas(repo: Path | str, remote: str, new: dict[str, str], old: dict[str, str]) -> str:
    """Move the remote's refs from old to new in one atomic push (a ref absent from new is deleted,
    one absent from old must not exist yet); "" when it moved, else git's reason."""
    specs, leases = [], []
    for ref in sorted(set(new) | set(old)):
        if new.get(ref) == old.get(ref):
            continue
        leases.append(f"--force-with-lease={ref}:{old.get(ref, '')}")
        specs.append(f"{new[ref]}:{ref}" if ref in new else f":{ref}")
    if not specs:
        return ""
    res = remote_git(
        repo, "push", "--quiet", "--atomic", "--porcelain", *leases, "--", remote, *specs, check=False
    )
    if res.returncode == 0:
        return ""
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    return next(
        (ln for ln in lines if "rejected" in ln or "stale" in ln), lines[-1] if lines else "push failed"
    )


def fetch_into(repo: Path | str, remote: str, refs: dict[str, str], drop: list[str]) -> None:
    """Make repo's refs equal the remote's values `refs` (fetched through a scratch namespace, so a
    branch checked out in a worktree is updated too), and delete those in `drop`: one fetch, checked
    before anything here moves (a value the remote does not hold moves nothing, drops included),
    then the drops in one transaction (so a dropped `a` never stands in the way of a taken `a/b`),
    then every ref moved in one more. The scratch refs are gone afterwards, whatever failed."""
    scratch = "refs/boss-fetch/"
    order = sorted(refs)
    names = [f"{scratch}{i}" for i in range(len(order))]
    try:
        if order:
            specs = [f"+{ref}:{name}" for ref, name in zip(order, names, strict=True)]
            remote_git(repo, "fetch", "--quiet", "--no-tags", "--", remote, *specs)
            got = git.ref_commits(repo, names)
            for ref, name in zip(order, names, strict=True):
                if got.get(name) != refs[ref]:
                    there = (got.get(name) or "nothing")[:10]
                    msg = (
                        f"the shared remote {remote}: {ref} is at {there}, not at {refs[ref][:10]} "
                        "(it moved since the run); run the worker again"
                    )
                    raise StateError(msg)
        git.update_refs(repo, dict.fromkeys(drop))
        if order:
            moves: dict[str, str | None] = {**dict.fromkeys(names), **refs}
            git.update_refs(repo, moves)
    except BaseException:
        with contextlib.suppress(GitError):
            git.update_refs(repo, dict.fromkeys(git.refs_under(repo, scratch)))
        raise
