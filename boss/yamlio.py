"""The one YAML helper: safe load, readable block-style dump, atomic writes."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import yaml

from boss.errors import InputError

# libyaml's C parser is ~10x faster than the pure-Python one (a 50-worker manifest: 58 -> 5 ms).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    """A safe dumper that writes multi-line strings as `|` blocks people can edit."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def load(text: str, source: str) -> Any:
    """Parse YAML text; InputError naming source and line on a syntax error."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (C or Python)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        context = getattr(e, "context_mark", None)
        if mark is not None and context is not None and mark.line >= len(text.splitlines()):
            mark = context  # an error at the very end: name where the unclosed construct began
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        msg = f"{source}:{where} invalid YAML: {problem}"
        raise InputError(msg) from e


def load_file(path: Path) -> Any:
    """Read and parse a YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        msg = f"{path}: cannot read: {e.strerror}"
        raise InputError(msg) from e
    return load(text, str(path))


def dump(data: Any) -> str:
    """YAML text in the order given, block style."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write text so readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary name per process and thread: concurrent writers never share one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
