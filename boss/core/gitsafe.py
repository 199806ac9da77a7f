"""What a repository configures git to run, switched off for boss's own git commands.

An agent can write the shared git directory: hooks, `core.hooksPath`, `core.fsmonitor`,
filter, merge and diff drivers (named by `.gitattributes` or `info/attributes`, defined in the
config or in a file it includes), signing programs, editors, pagers. Every git command boss
and the worker run gets this environment: fixed settings in the command scope (which wins over
every config file, includes and `config.worktree` too), and, for each filter and merge driver
the repository's config files name, settings that take its program away: a filter does
nothing, a merge driver becomes git's own text merge. Diff drivers (external diff, textconv)
are switched off by flags on the commands that could print a patch.

The settings travel as GIT_CONFIG_COUNT/KEY/VALUE: a driver name may hold `=` or `.`, which a
`-c` option cannot say, and git passes them on to the git processes it starts itself.
"""

from __future__ import annotations

import re
from pathlib import Path

# Each one names a program git would run, or a place it would take one from.
FIXED: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", "/dev/null"),  # every hook: git looks for /dev/null/<name> and finds none
    ("core.fsmonitor", "false"),
    ("core.pager", "cat"),
    ("core.editor", "true"),
    ("sequence.editor", "true"),
    ("core.sshCommand", "false"),
    ("core.attributesFile", "/dev/null"),
    ("core.useReplaceRefs", "false"),  # refs/replace/* would show boss other commits than they are
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("tag.forceSignAnnotated", "false"),
    ("log.showSignature", "false"),
    ("merge.verifySignatures", "false"),
    ("gpg.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.x509.program", "false"),
    ("gc.auto", "0"),  # no `gc --auto` after a commit or merge (N workers would each start one)
    ("maintenance.auto", "false"),
    ("submodule.recurse", "false"),
    ("status.submoduleSummary", "false"),
    ("diff.submodule", "short"),
    ("rerere.enabled", "false"),  # a planted rr-cache would resolve conflicts its own way
    ("merge.stat", "false"),
    ("protocol.allow", "never"),  # boss's git is local only: no transport, no credential helper
    ("safe.bareRepository", "explicit"),  # a worktree made to look like a bare repo is refused
)
ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "GIT_PAGER": "cat",
}
# Variables that would run a program of their own whatever the config says.
UNSET = ("GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_PROXY_COMMAND")
# Subcommands that can print a patch: a diff driver's external command and textconv stay off.
DIFFING = frozenset({"diff", "diff-tree", "diff-index", "diff-files", "log", "show"})
DIFF_FLAGS = ("--no-ext-diff", "--no-textconv")
# The built-in text merge, as an external driver: git merge-file writes the result into %A and
# exits with the number of conflicts, as a driver must.
MERGE_FILE = "git merge-file --marker-size=%L %A %O %B"

_HEADER = re.compile(r'^[ \t\v\f]*\[[ \t]*([A-Za-z0-9.-]*)[ \t]*(?:"((?:[^"\\\n]|\\.)*)")?[ \t]*\](.*)$')
_KEY = re.compile(r"^[ \t]*([A-Za-z][A-Za-z0-9-]*)[ \t]*=?(.*)$")
_MAX_DEPTH = 10  # git's own limit on nested includes


def drivers(files: list[Path]) -> dict[str, set[str]]:
    """The filter, merge and diff driver names these config files (and what they include) define.

    Read loosely, erring towards more names: every include is followed whatever its
    condition, and a malformed line is still searched for a section header.
    """
    found: dict[str, set[str]] = {"filter": set(), "merge": set(), "diff": set()}
    seen: set[Path] = set()
    for path in files:
        _scan(path, found, seen, 0)
    return found


def _scan(path: Path, found: dict[str, set[str]], seen: set[Path], depth: int) -> None:
    if depth > _MAX_DEPTH or path in seen:
        return
    seen.add(path)
    try:
        raw = path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
    except OSError:
        return  # missing, a folder, unreadable: git reads nothing there either
    raw = raw.replace("\r", "")
    # Read twice, as lines and with continuation lines joined: every line git starts is
    # among the first, and every value it reads across lines is in the second.
    for text in (raw, re.sub(r"\\\n", "", raw)):
        section = ""
        for line in text.split("\n"):
            header = _HEADER.match(line)
            if header:
                name, sub, line = header.group(1).lower(), header.group(2), header.group(3)
                if sub is not None:
                    sub = re.sub(r"\\(.)", r"\1", sub)
                elif "." in name:
                    name, sub = name.split(".", 1)  # the old [section.sub] form, lowercased by git
                section = "include" if name == "includeif" else name
                if sub is not None and name in found:
                    found[name].add(sub)
            key = _KEY.match(line)
            if key and section == "include" and key.group(1).lower() == "path":
                target = _value(key.group(2))
                if target:
                    _scan(_include_path(target, path), found, seen, depth + 1)


def _value(raw: str) -> str:
    """A config value: quotes removed, escapes applied, a trailing comment dropped."""
    out, quoted, i = [], False, 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(raw[i + 1], raw[i + 1]))
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c in "#;" and not quoted:
            break
        else:
            out.append(c)
        i += 1
    return "".join(out).strip()


def _include_path(target: str, including: Path) -> Path:
    if target.startswith("~/"):
        return Path(target).expanduser()
    return including.parent / target


def git_dirs(path: Path | str) -> tuple[Path, Path] | None:
    """(git dir, common dir) of the checkout at or above path, found as git finds them; None outside."""
    here = Path(path).resolve()  # git starts from the physical folder too
    for folder in (here, *here.parents):
        dotgit = folder / ".git"
        if dotgit.is_dir():
            gitdir = dotgit
        elif dotgit.is_file():
            try:
                line = dotgit.read_text(errors="replace").split("\n", 1)[0]
            except OSError:
                return None
            if not line.startswith("gitdir: "):
                return None
            gitdir = folder / line[len("gitdir: ") :].strip()
        else:
            continue
        try:
            common = gitdir / (gitdir / "commondir").read_text(errors="replace").strip()
        except OSError:
            common = gitdir
        return gitdir, common
    return None


def config_files(path: Path | str) -> list[Path]:
    """The repository's own config files git reads for a command at path (not global, system)."""
    dirs = git_dirs(path)
    if dirs is None:
        return []
    gitdir, common = dirs
    return [common / "config", common / "config.worktree", gitdir / "config.worktree"]


def settings(path: Path | str | None) -> list[tuple[str, str]]:
    """The config settings every git command at path runs with (path None: outside a repository)."""
    result = list(FIXED)
    if path is None:
        return result
    names = drivers(config_files(path))
    for name in sorted(names["filter"]):
        result += [(f"filter.{name}.{k}", "") for k in ("clean", "smudge", "process")]
        result.append((f"filter.{name}.required", "false"))
    for name in sorted(names["merge"]):
        result.append((f"merge.{name}.driver", MERGE_FILE))
    return result


def environment(base: dict[str, str], path: Path | str | None) -> dict[str, str]:
    """base with git's config-driven programs switched off for a command at path."""
    env = {k: v for k, v in base.items() if k not in UNSET}
    env.update(ENV)
    try:
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    for key, value in settings(path):
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    return env


def with_diff_flags(args: tuple[str, ...]) -> tuple[str, ...]:
    """args with --no-ext-diff --no-textconv after a diffing subcommand (DIFFING)."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-c", "-C") else 1
    if i < len(args) and args[i] in DIFFING:
        return (*args[: i + 1], *DIFF_FLAGS, *args[i + 1 :])
    return args
