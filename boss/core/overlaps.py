"""Scope overlaps: which workers' scope regexes can match the same path (SPEC section 3).

Linear in the number of candidate paths, not quadratic in workers: each candidate path (a
tracked file, or the literal part of a simple scope such as `^src/auth/`) is matched once
against every scope, through dictionaries for the simple forms (`^dir/`, `^file$`) and
`re.search` for the rest; workers matching the same candidate overlap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

# The literal head of a regex: ordinary characters, or an escaped punctuation character.
_LITERAL = re.compile(r"(?:[^\\.^$*+?{}\[\]|()]|\\[^A-Za-z0-9])*")
_PREFIX_TAILS = ("", ".*", ".*$")
_EXACT_TAILS = ("$", r"\Z")


def simple_form(rx: str) -> tuple[str, str] | None:
    """("prefix", lit) for `^lit` or `^lit.*`, ("exact", lit) for `^lit$`, None otherwise."""
    if not rx.startswith("^"):
        return None
    m = _LITERAL.match(rx, 1)
    if m is None:  # pragma: no cover - the pattern matches the empty string
        return None
    literal = re.sub(r"\\(.)", r"\1", m.group(0))
    tail = rx[m.end() :]
    if tail in _PREFIX_TAILS:
        return ("prefix", literal)
    if tail in _EXACT_TAILS:
        return ("exact", literal)
    return None


@dataclass
class _Index:
    """Every scope regex, filed by form, pointing at the workers that own it."""

    prefixes: dict[str, set[int]] = field(default_factory=dict)
    exact: dict[str, set[int]] = field(default_factory=dict)
    general: list[tuple[re.Pattern[str], int]] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    def add(self, rx: str, owner: int) -> None:
        form = simple_form(rx)
        if form is None:
            self.general.append((re.compile(rx), owner))
        elif form[0] == "prefix":
            self.prefixes.setdefault(form[1], set()).add(owner)
        else:
            self.exact.setdefault(form[1], set()).add(owner)

    def finish(self) -> None:
        self.lengths = sorted({len(p) for p in self.prefixes})

    def owners(self, path: str) -> frozenset[int]:
        """Indices of the workers whose scope matches path."""
        found: set[int] = set(self.exact.get(path, ()))
        for n in self.lengths:
            if n > len(path):
                break
            found.update(self.prefixes.get(path[:n], ()))
        for rx, owner in self.general:
            if owner not in found and rx.search(path):
                found.add(owner)
        return frozenset(found)


def find_overlaps(
    scopes: Sequence[tuple[str, ...]],
    concurrent: Callable[[int, int], bool],
    tracked: Iterable[str] = (),
) -> list[tuple[int, int, str]]:
    """(i, j, example path) for each pair i < j of concurrent scopes that overlap.

    Scopes overlap when a tracked path matches both, or when the literal part of a simple
    scope (`^dir/`, `^file$`) is matched by the other scope: `^src/` and `^src/auth/` overlap
    even before any file exists under src/auth/.
    """
    index = _Index()
    for owner, scope in enumerate(scopes):
        for rx in scope:
            index.add(rx, owner)
    index.finish()
    candidates = [*tracked, *index.exact, *index.prefixes]
    groups: dict[frozenset[int], str] = {}
    for path in candidates:
        owners = index.owners(path)
        if len(owners) > 1 and owners not in groups:
            groups[owners] = path
    found: dict[tuple[int, int], str] = {}
    for owners, example in groups.items():
        members = sorted(owners)
        for k, i in enumerate(members):
            for j in members[k + 1 :]:
                if (i, j) not in found and concurrent(i, j):
                    found[(i, j)] = example
    return [(i, j, found[(i, j)]) for i, j in sorted(found)]
