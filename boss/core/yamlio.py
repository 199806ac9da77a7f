"""The one YAML helper: safe load, readable block-style dump, atomic writes."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from pathlib import Path
from typing import Any

from boss.core.errors import InputError

# PyYAML is imported on first use: a worker reads the manifest and config from their JSON
# caches (see load_file) and never pays for the import.


@functools.cache
def _yaml() -> Any:
    import yaml

    return yaml


@functools.cache
def loader() -> Any:
    """The safe loader every YAML file is read with: a duplicate key is an error, not a silent
    override (an agent's second `scope:` below the first would otherwise win)."""
    # libyaml's C parser is ~10x faster than the pure-Python one (a 50-worker manifest: 58 -> 5 ms).
    yaml = _yaml()
    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc]
        """A safe loader that refuses a key given twice in one mapping."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, Any] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue  # `<<:` merges, and may be given more than once
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.setdefault(key, key_node)
                    except TypeError:
                        continue  # unhashable: the constructor itself says so
                    if first is not key_node:
                        line = first.start_mark.line + 1
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r} (first on line {line})", key_node.start_mark
                        )
            return super().construct_mapping(node, deep=deep)

    return Loader


@functools.cache
def _dumper() -> Any:
    yaml = _yaml()
    base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc]
        """A safe dumper that writes multi-line strings as `|` blocks people can edit."""

    def _str(dumper: Any, value: str) -> Any:
        if "\n" in value:
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
        return dumper.represent_scalar("tag:yaml.org,2002:str", value)

    Dumper.add_representer(str, _str)
    return Dumper


def load(text: str, source: str) -> Any:
    """Parse YAML text; InputError naming source and line on a syntax error, a duplicate key,
    a number too long or nesting too deep."""
    yaml = _yaml()
    try:
        return yaml.load(text, Loader=loader())  # a safe loader (C or Python)
    except RecursionError as e:
        msg = f"{source}: invalid YAML: nested too deeply"
        raise InputError(msg) from e
    except ValueError as e:  # an integer of more digits than Python converts
        msg = f"{source}: invalid YAML: {str(e).split(':')[0]}"
        raise InputError(msg) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        context = getattr(e, "context_mark", None)
        if mark is not None and context is not None and mark.line >= len(text.splitlines()):
            mark = context  # an error at the very end: name where the unclosed construct began
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        msg = f"{source}:{where} invalid YAML: {problem}"
        raise InputError(msg) from e


def cache_path(path: Path) -> Path:
    """Where save_cache keeps a file's parsed data: `.<name>.json` beside it."""
    return path.with_name(f".{path.name}.json")


def _read(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        msg = f"{where}: cannot read: {e.strerror}"
        raise InputError(msg) from e
    except UnicodeDecodeError as e:
        msg = f"{where}: byte {e.start}: not UTF-8 text"
        raise InputError(msg) from e


def load_file(path: Path, source: str | None = None, *, cached: bool = False) -> Any:
    """Read and parse a YAML file; errors name it as source (default: the path).

    cached: use the JSON copy save_cache keeps beside the file when it was made from the very
    same text (any edit is seen at once: the whole text is compared). JSON is read in a
    fraction of the time PyYAML takes to import, which every worker would pay.
    """
    where = source or str(path)
    text = _read(path, where)
    if cached:
        try:
            saved = json.loads(cache_path(path).read_text(encoding="utf-8"))
            if isinstance(saved, dict) and saved.get("text") == text:
                return saved.get("data")
        except (OSError, ValueError, RecursionError):
            pass
    return load(text, where)


def save_cache(path: Path) -> None:
    """Keep a YAML file's parsed data beside it as JSON, with the text it came from, for
    load_file(cached=True). `boss render` does it; readers never write. Data JSON cannot hold
    exactly (dates, say) is not kept, and a folder that cannot be written is no error."""
    text = _read(path, str(path))
    data = load(text, str(path))
    try:
        encoded = json.dumps({"text": text, "data": data}, allow_nan=False)
    except (TypeError, ValueError):
        return
    if json.loads(encoded)["data"] == data:
        with contextlib.suppress(OSError):  # a read-only checkout: parse every time
            write_atomic(cache_path(path), encoded)


def dump(data: Any) -> str:
    """YAML text in the order given, block style."""
    return str(
        _yaml().dump(
            data,
            Dumper=_dumper(),
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=100,
        )
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
