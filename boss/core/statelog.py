"""The append-only state log (SPEC section 6): one line per event, safe for many writers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from boss.core.lock import locked

HEADER = "ISO_TIMESTAMP | STATE | ITERATION_ID | ACTION | RESULT | ARTIFACTS"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n").replace("\r", "")


def _split(line: str) -> list[str]:
    fields, cur, i = [], [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            nxt = line[i + 1]
            cur.append({"n": "\n", "|": "|", "\\": "\\"}.get(nxt, nxt))
            i += 2
            continue
        if ch == "|":
            fields.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    fields.append("".join(cur).strip())
    return fields


@dataclass(frozen=True)
class Event:
    """One line of the state log."""

    time: str
    state: str
    iteration_id: str
    action: str
    result: str
    artifacts: str

    def line(self) -> str:
        """The event as one log line."""
        parts = (self.time, self.state, self.iteration_id, self.action, self.result, self.artifacts)
        return " | ".join(_escape(p) for p in parts)

    @property
    def worker(self) -> str:
        """The worker an event belongs to (the part of ITERATION_ID before the first dot)."""
        head = self.iteration_id.split(".", 1)[0]
        return self.iteration_id.split(".", 1)[1] if head == "merge" and "." in self.iteration_id else head


def append(log: Path, event: Event) -> None:
    """Append one event; a lock and a single write keep concurrent lines whole and unmixed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    data = (event.line() + "\n").encode("utf-8")
    busy = f"{log}: could not lock the state log for 30s (is a process stuck holding {log}.lock?)"
    with locked(Path(str(log) + ".lock"), 30, busy):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size == 0:
                data = (HEADER + "\n").encode() + data
            os.write(fd, data)
        finally:
            os.close(fd)


def parse(line: str) -> Event | None:
    """One log line as an Event; None for the header or a malformed line."""
    if not line.strip() or line.startswith("ISO_TIMESTAMP"):
        return None
    parts = _split(line.rstrip("\n"))
    if len(parts) != 6:
        return None
    return Event(*parts)


def read(log: Path, since: int = 0) -> list[Event]:
    """Every event in the log, oldest first; from byte offset `since` (an earlier size()) on."""
    if not log.is_file():
        return []
    with log.open("rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", errors="replace")
    return [e for line in text.split("\n") if (e := parse(line)) is not None]


def read_new(log: Path, since: int) -> tuple[list[Event], int]:
    """The whole lines added from byte offset `since` on, and the offset to read from next time
    (a line still being written is left for then)."""
    try:
        with log.open("rb") as f:
            f.seek(since)
            data = f.read()
    except FileNotFoundError:
        return [], since
    whole = data[: data.rfind(b"\n") + 1]
    text = whole.decode("utf-8", errors="replace")
    return [e for line in text.split("\n") if (e := parse(line)) is not None], since + len(whole)


def size(log: Path) -> int:
    """The log's size in bytes now: read(log, since=size(log)) later gives what came after."""
    try:
        return log.stat().st_size
    except FileNotFoundError:
        return 0


def excerpt(text: str, limit: int = 160) -> str:
    """text shortened for a log field, exactly as written otherwise: a quoted command keeps its
    runs of spaces (the field escapes line breaks and separators itself)."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
