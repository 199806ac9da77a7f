"""Importing bashlex fast and patched (shared by the parser and the policy cache).

Two things are patched around bashlex 0.18, both at import and both with a safe fallback:
- Its bundled PLY rebuilds the LALR tables on every import (about 80 ms, which would double
  the guard's latency); the tables are cached as JSON (no code, no pickle) in the user's cache
  folder and the parser is rebuilt from them (about 10 ms).
- Here-documents with a quoted delimiter (`<<'EOF'`, used by every agent that writes a commit
  message) fail to parse, because the delimiter keeps its quotes; it is unquoted for the match,
  and the heredoc is marked quoted (its body is not expanded by the shell).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the guard 3 ms
if TYPE_CHECKING:
    from typing import Any

QUOTED_HEREDOCS: list[set[int]] = []  # per parse in progress: ids of heredocs with quoted delimiters
_LOADED: list[ModuleType] = []
_QUOTES = "'\""


def _cache_file() -> Path | None:
    spec = importlib.util.find_spec("bashlex")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    try:
        stamps = [folder / "parser.py", folder / "yacc.py"]
        key = "-".join(f"{s.stat().st_size}.{s.stat().st_mtime_ns}" for s in stamps)
    except OSError:
        return None
    version = f"{sys.version_info[0]}{sys.version_info[1]}"
    return cache_dir() / f"bashlex-tables-py{version}-{key}.json"


def cache_dir() -> Path:
    """The user's cache folder for boss (parser tables, parsed policies): safe to delete."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "boss"


def _load_fast(cache: Path) -> ModuleType:
    """Import bashlex with its parser rebuilt from cached tables instead of regenerated."""
    tables = json.loads(cache.read_text(encoding="utf-8"))
    spec = importlib.util.find_spec("bashlex")
    if spec is None or spec.loader is None:
        msg = "bashlex is not installed"
        raise ImportError(msg)
    package = importlib.util.module_from_spec(spec)
    sys.modules["bashlex"] = package  # __init__ runs last, once the parser module exists
    try:
        from bashlex import yacc

        original = yacc.yacc

        def from_tables(*args: Any, **kwargs: Any) -> Any:  # noqa: ARG001
            pdict = sys._getframe(1).f_globals
            productions = []
            for number, name, prod, func in tables["productions"]:
                p = yacc.Production(number, name, prod, func=func)
                p.bind(pdict)
                productions.append(p)
            table = type("Tables", (), {})()
            table.lr_productions = productions
            table.lr_action = {int(k): v for k, v in tables["action"].items()}
            table.lr_goto = {int(k): v for k, v in tables["goto"].items()}
            return yacc.LRParser(table, pdict.get("p_error"))

        yacc.yacc = from_tables
        try:
            import bashlex.parser  # noqa: F401
        finally:
            yacc.yacc = original
        spec.loader.exec_module(package)
    except BaseException:
        for name in [n for n in sys.modules if n == "bashlex" or n.startswith("bashlex.")]:
            del sys.modules[name]
        raise
    return package


def _save_tables(bashlex: ModuleType, cache: Path) -> None:
    parser = bashlex.parser.yaccparser
    data = {
        "productions": [(p.number, p.name, list(p.prod), p.func) for p in parser.productions],
        "action": {k: dict(v) for k, v in parser.action.items()},
        "goto": {k: dict(v) for k, v in parser.goto.items()},
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(cache)


def _patch_heredoc(bashlex: ModuleType) -> None:
    heredoc = bashlex.heredoc
    original = heredoc.makeheredoc

    def makeheredoc(tokenizer: Any, redirnode: Any, lineno: int, killleading: bool) -> Any:
        word = redirnode.output.word
        unquoted = "".join(ch for ch in word if ch not in _QUOTES).replace("\\", "")
        if unquoted == word:
            return original(tokenizer, redirnode, lineno, killleading)
        if QUOTED_HEREDOCS:
            QUOTED_HEREDOCS[-1].add(id(redirnode))
        redirnode.output.word = unquoted
        try:
            return original(tokenizer, redirnode, lineno, killleading)
        finally:
            redirnode.output.word = word

    heredoc.makeheredoc = makeheredoc


def load_bashlex() -> ModuleType:
    """bashlex, imported once: from cached parser tables when possible, patched for heredocs."""
    if _LOADED:
        return _LOADED[0]
    cache = _cache_file()
    module: ModuleType | None = None
    if cache is not None and cache.is_file() and "bashlex" not in sys.modules:
        try:
            module = _load_fast(cache)
        except Exception:  # a stale or damaged cache: rebuild it below
            module = None
    if module is None:
        import bashlex

        module = bashlex
        if cache is not None:
            with contextlib.suppress(OSError):  # no writable cache: slower imports, nothing breaks
                _save_tables(module, cache)
    _patch_heredoc(module)
    _LOADED.append(module)
    return module
