"""A scripted model server on 127.0.0.1 that speaks the wire formats of the real agent CLIs.

Each CLI's test module points the real CLI at it (its environment and config files). Its "model" is a script: a list of
conversations, each a list of steps (run a shell command, write or edit a file, say a text).
The server needs no memory of its own to follow a conversation: a request's history tells
how many assistant turns came before, so turn N answers with step N of the conversation; a
new conversation (a new agent run: another iteration, a retry, a planner attempt) is told by
the text of its first user message, and takes the next script entry. Side requests a CLI
makes (titles, token counts, model lists) are answered by each wire module without a step.

Every reply reports realistic usage (`Usage`), and every request is logged (`requests`,
and one JSON line per request in `log_path`), so a test can read what the CLI really sent:
its tool list, its system prompt, the hook's block message in a tool result.

`refuse(reply, times)` makes it a provider at its limit: the next `times` model requests get
`reply` (a 429 with retry-after, a 529: see `limits`), then it answers normally again; each
logged request says when it arrived (`at`), its status and whether it was refused.
`admit(most, reply, hold)` makes it a provider that serves `most` model requests at once: one
arriving while `most` are in flight gets `reply`; each served one takes `hold` seconds.

Wire formats live in their own modules (`wire_anthropic`, `wire_responses`, `wire_gemini`,
`wire_chat`, `wire_aider`); each exposes `handle(server, method, path, body) -> Reply | None`
(None: not mine). A server is given one wire (`ModelServer(wire=wire_x.handle)`), or tries
them all in order.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# --- the script ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One model turn: a tool call (shell, write, edit, read, or a raw call) or a final text."""

    kind: str  # "shell" | "write" | "edit" | "read" | "raw" | "say"
    command: str = ""
    path: str = ""
    content: str = ""  # write: the whole file; edit: the new text
    old: str = ""  # edit: the text replaced
    text: str = ""  # say: the final answer
    tool: str = ""  # raw: the CLI's own tool name
    args: dict[str, Any] = field(default_factory=dict)  # raw: its arguments


def shell(command: str) -> Step:
    """Run a shell command through the CLI's shell tool."""
    return Step("shell", command=command)


def write(path: str, content: str) -> Step:
    """Write a whole file through the CLI's write tool."""
    return Step("write", path=path, content=content)


def edit(path: str, old: str, new: str) -> Step:
    """Replace text in a file through the CLI's edit tool."""
    return Step("edit", path=path, old=old, content=new)


def read(path: str) -> Step:
    """Read a file through the CLI's read tool."""
    return Step("read", path=path)


def raw(tool: str, **args: Any) -> Step:
    """A tool call in the CLI's own vocabulary (e.g. Claude's EnterWorktree)."""
    return Step("raw", tool=tool, args=dict(args))


def say(text: str) -> Step:
    """End the turn with a final text (a step with no tool call ends the agent's run)."""
    return Step("say", text=text)


DONE = say("Done.")


@dataclass(frozen=True)
class Usage:
    """Tokens one reply reports (each wire module maps them to its own field names)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    thought_tokens: int = 0


def usage_for(turn: int) -> Usage:
    """Realistic, distinct numbers per turn, so a test can tell sums from single replies."""
    return Usage(input_tokens=1200 + 37 * turn, output_tokens=80 + 11 * turn, cached_tokens=0)


# --- replies ---------------------------------------------------------------------------------


@dataclass
class Reply:
    """A response: JSON, or server-sent events (event name may be None), with a status."""

    status: int = 200
    json: Any = None
    sse: list[tuple[str | None, Any]] | None = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Turn:
    """What a wire module asks the server for: the step of this conversation's next turn."""

    step: Step
    usage: Usage
    conversation: int  # 0-based index of the conversation in the script
    turn: int  # 0-based index of the turn in the conversation


@dataclass
class Logged:
    """One request as received."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    main: bool = False  # a scripted turn (not a side request)
    conversation: int = -1
    turn: int = -1
    usage: Usage | None = None
    at: float = 0.0  # time.monotonic() when it arrived
    status: int = 0  # what it was answered
    refused: bool = False  # answered with the server's refusal (`refuse`), not by a wire


class ModelServer:
    """The scripted model: `with ModelServer(script) as server: ...server.url...`."""

    def __init__(
        self,
        conversations: list[list[Step]] | None = None,
        log_path: Path | None = None,
        wire: Callable[[ModelServer, str, str, Any], Reply | None] | None = None,
    ) -> None:
        self.conversations: list[list[Step]] = conversations or []
        self.wire = wire  # None: every wire module, first to answer wins
        self.log_path = log_path
        self.requests: list[Logged] = []
        self._keys: dict[str, int] = {}
        self._lock = threading.Lock()
        self._wires: list[Callable[[ModelServer, str, str, Any], Reply | None]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._refusal: Reply | None = None
        self._refusals_left = 0
        self._refusing: str | Callable[[Logged], bool] = ""
        self._answer_first = 0
        self._admit: tuple[int, Reply, float] | None = None
        self.in_flight = 0  # model requests being served now (with `admit`)
        self.peak = 0  # the most served at once (with `admit`)

    # the script

    def script(self, *conversations: list[Step]) -> None:
        """Replace the script (and forget which conversations were seen)."""
        with self._lock:
            self.conversations = list(conversations)
            self._keys.clear()

    def turn(self, first_user_text: str, assistant_turns: int) -> Turn:
        """The step for a request: conversation by its first user message, turn by its history."""
        key = hashlib.sha256(first_user_text.encode()).hexdigest()
        with self._lock:
            index = self._keys.setdefault(key, len(self._keys))
            steps = self.conversations[index] if index < len(self.conversations) else []
        step = steps[assistant_turns] if assistant_turns < len(steps) else DONE
        return Turn(step, usage_for(assistant_turns), index, assistant_turns)

    def refuse(
        self, reply: Reply, times: int = -1, only: str | Callable[[Logged], bool] = "", after: int = 0
    ) -> None:
        """Answer the next `times` model requests (POSTs; only those whose path contains `only`,
        or for which `only(request)` is true) with reply (-1: until told otherwise, 0: stop
        refusing), after answering `after` of them normally: a provider's rate limit or
        overload (see `limits`), from the start of a run or in its middle."""
        with self._lock:
            self._refusal, self._refusals_left, self._refusing = reply, times, only
            self._answer_first = after

    def admit(self, most: int, reply: Reply, hold: float = 0.0) -> None:
        """Serve at most `most` model requests (POSTs) at once: one that arrives while `most` are
        in flight is answered `reply` (the provider's 429: see `limits`) at once; each served one
        is held `hold` seconds before its answer (a model takes time), so agent runs overlap."""
        with self._lock:
            self._admit = (most, reply, hold)

    def _enter(self, logged: Logged) -> tuple[bool, Reply | None, float]:
        """With `admit`: (counted in flight, the refusal or None, how long to hold it)."""
        with self._lock:
            if self._admit is None or logged.method != "POST":
                return False, None, 0.0
            most, reply, hold = self._admit
            if self.in_flight >= most:
                return False, reply, 0.0
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return True, None, hold

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _refusal_for(self, logged: Logged) -> Reply | None:
        with self._lock:
            if logged.method != "POST" or self._refusal is None or self._refusals_left == 0:
                return None
            only = self._refusing
            if not (only(logged) if callable(only) else only in logged.path):
                return None
            if self._answer_first > 0:
                self._answer_first -= 1
                return None
            self._refusals_left -= self._refusals_left > 0
            return self._refusal

    # accounting

    def refused(self) -> list[Logged]:
        """The requests answered with the refusal, in order."""
        return [r for r in self.requests if r.refused]

    def main_requests(self) -> list[Logged]:
        """The scripted turns, in order."""
        return [r for r in self.requests if r.main]

    def reported(self) -> Usage:
        """The sum of the usage reported on every reply (side requests included)."""
        used = [r.usage for r in self.requests if r.usage is not None]
        return Usage(sum(u.input_tokens for u in used), sum(u.output_tokens for u in used),
                     sum(u.cached_tokens for u in used), sum(u.thought_tokens for u in used))  # fmt: skip

    def mark(self, turn: Turn | None = None, usage: Usage | None = None) -> None:
        """Record on the current request what it was answered with (called by wire modules)."""
        logged = _current.logged
        if logged is None:  # pragma: no cover - only inside a request
            return
        if turn is not None:
            logged.main, logged.conversation, logged.turn = True, turn.conversation, turn.turn
            logged.usage = turn.usage
        if usage is not None:
            logged.usage = usage

    # serving

    def __enter__(self) -> ModelServer:
        self._wires = [self.wire] if self.wire is not None else wires()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw_body = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw_body) if raw_body else None
                except ValueError:
                    body = raw_body.decode(errors="replace")
                logged = Logged(
                    self.command, self.path, body, dict(self.headers.items()), at=time.monotonic()
                )
                with server._lock:
                    server.requests.append(logged)
                _current.logged = logged
                entered = False
                try:
                    reply = server._refusal_for(logged)
                    if reply is None:
                        entered, reply, hold = server._enter(logged)
                        time.sleep(hold)
                    logged.refused = reply is not None
                    for wire in [] if reply is not None else server._wires:
                        reply = wire(server, self.command, self.path, body)
                        if reply is not None:
                            break
                    reply = reply or Reply(404, json={"error": {"message": f"no route {self.path}"}})
                finally:
                    _current.logged = None
                    if entered:  # before the answer goes out: its client's next request is no overlap
                        server._leave()
                logged.status = reply.status
                server._log(logged, reply)
                self._send(reply)

            do_GET = do_POST = _handle

            def _send(self, reply: Reply) -> None:
                if reply.sse is not None:
                    chunks = []
                    for event, data in reply.sse:
                        payload = data if isinstance(data, str) else json.dumps(data)
                        chunks.append((f"event: {event}\n" if event else "") + f"data: {payload}\n\n")
                    raw = "".join(chunks).encode()
                    kind = "text/event-stream"
                elif reply.text is not None:
                    raw, kind = reply.text.encode(), "text/plain"
                else:
                    raw, kind = json.dumps(reply.json).encode(), "application/json"
                self.send_response(reply.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def port(self) -> int:
        """The port it listens on (127.0.0.1)."""
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    def _log(self, logged: Logged, reply: Reply) -> None:
        if self.log_path is None:
            return
        line = {"method": logged.method, "path": logged.path, "main": logged.main,
                "conversation": logged.conversation, "turn": logged.turn, "status": reply.status,
                "refused": logged.refused,
                "usage": logged.usage.__dict__ if logged.usage else None, "body": logged.body}  # fmt: skip
        with self._lock, self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


WIRE_MODULES = ("wire_anthropic", "wire_responses", "wire_gemini", "wire_chat", "wire_aider")


def wires() -> list[Callable[[ModelServer, str, str, Any], Reply | None]]:
    """The `handle` of every wire module (tests/contract is on sys.path: see conftest)."""
    import importlib

    found = []
    for name in WIRE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        found.append(module.handle)
    return found


class _Current(threading.local):
    logged: Logged | None = None


_current = _Current()
