"""One entry of the error catalogue (boss/core/error_catalogue.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One error situation."""

    key: str  # a stable name; the test's scenario for this entry has the same name
    area: str
    situation: str
    exit_code: int
    message: str  # what follows `Error: ` on stderr (the first line when there are several)
    fix: str
