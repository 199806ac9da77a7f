"""The Anthropic Messages API as Claude Code calls it: POST /v1/messages (SSE when streamed).

A main turn (a request that offers tools) answers with the script's step as a `tool_use` block
in Claude Code's own vocabulary (Bash, Write, Edit, Read, or a raw tool), or with a text;
side requests (titles, summaries: no tools) get a short text; `count_tokens` a number.
Every reply reports usage in message_start / message_delta, as the real API does: the input
tokens in message_start, the output tokens (cumulative) in message_delta.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from mock_server import ModelServer, Reply, Step, Turn, Usage

SIDE_USAGE = Usage(input_tokens=90, output_tokens=7)
_ids = itertools.count(1)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(
        b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"
    )


def first_user_text(body: dict[str, Any]) -> str:
    """The text of the first user message (the prompt; Claude prepends system reminders)."""
    for message in body.get("messages") or []:
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def tool_names(body: dict[str, Any]) -> list[str]:
    """The names of the tools a request offers."""
    return [t.get("name", "") for t in body.get("tools") or []]


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tool_result block of a request's history."""
    return [
        b
        for m in body.get("messages") or []
        if m.get("role") == "user" and isinstance(m.get("content"), list)
        for b in m["content"]
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]


def result_text(block: dict[str, Any]) -> str:
    """A tool_result's content as text."""
    content = block.get("content")
    return content if isinstance(content, str) else _text(content)


def _tool_use(step: Step) -> tuple[str, dict[str, Any]]:
    if step.kind == "shell":
        return "Bash", {"command": step.command, "description": "scripted command"}
    if step.kind == "write":
        return "Write", {"file_path": step.path, "content": step.content}
    if step.kind == "edit":
        return "Edit", {"file_path": step.path, "old_string": step.old, "new_string": step.content}
    if step.kind == "read":
        return "Read", {"file_path": step.path}
    return step.tool, dict(step.args)


def _absolute(args: dict[str, Any], cwd: str) -> dict[str, Any]:
    # Claude's file tools want absolute paths; the script names them relative to the worktree.
    path = args.get("file_path")
    if isinstance(path, str) and not path.startswith(("/", "~")) and cwd:
        return {**args, "file_path": f"{cwd.rstrip('/')}/{path}"}
    return args


def _cwd(body: dict[str, Any]) -> str:
    # The system prompt (or a reminder) states "Primary working directory: <path>".
    texts = [_text(body.get("system"))] + [_text(m.get("content")) for m in body.get("messages") or []]
    for text in texts:
        for line in text.splitlines():
            for marker in ("Primary working directory:", "Working directory:"):
                if marker in line:
                    return line.split(marker, 1)[1].strip().strip("`")
    return ""


def _stream(
    model: str, blocks: list[dict[str, Any]], usage: Usage, stop: str
) -> list[tuple[str | None, Any]]:
    mid = f"msg_{next(_ids):06d}"
    start_usage = {"input_tokens": usage.input_tokens, "output_tokens": 1,
                   "cache_creation_input_tokens": 0, "cache_read_input_tokens": usage.cached_tokens}  # fmt: skip
    message = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": start_usage}  # fmt: skip
    events: list[tuple[str | None, Any]] = [("message_start", {"type": "message_start", "message": message})]
    for i, block in enumerate(blocks):
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}}))  # fmt: skip
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            events.append(
                ("content_block_start", {"type": "content_block_start", "index": i, "content_block": head})
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    final = {"output_tokens": usage.output_tokens, "input_tokens": usage.input_tokens,
             "cache_creation_input_tokens": 0, "cache_read_input_tokens": usage.cached_tokens}  # fmt: skip
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": final}))  # fmt: skip
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _reply(body: dict[str, Any], blocks: list[dict[str, Any]], usage: Usage, stop: str) -> Reply:
    model = str(body.get("model") or "claude-sonnet-4-5")
    if body.get("stream"):
        return Reply(sse=_stream(model, blocks, usage, stop))
    content = [{"type": "text", "text": b["text"]} if b["type"] == "text" else b for b in blocks]
    return Reply(json={"id": f"msg_{next(_ids):06d}", "type": "message", "role": "assistant", "model": model,
                       "content": content, "stop_reason": stop, "stop_sequence": None,
                       "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                                 "cache_creation_input_tokens": 0,
                                 "cache_read_input_tokens": usage.cached_tokens}})  # fmt: skip


def main_turn(server: ModelServer, body: dict[str, Any]) -> Reply:
    """A scripted turn: the step as a tool_use block, or a final text."""
    assistant_turns = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
    turn: Turn = server.turn(first_user_text(body), assistant_turns)
    server.mark(turn)
    if turn.step.kind == "say":
        return _reply(body, [{"type": "text", "text": turn.step.text}], turn.usage, "end_turn")
    name, args = _tool_use(turn.step)
    block = {
        "type": "tool_use",
        "id": f"toolu_{next(_ids):06d}",
        "name": name,
        "input": _absolute(args, _cwd(body)),
    }
    return _reply(body, [block], turn.usage, "tool_use")


def handle(server: ModelServer, method: str, path: str, body: Any) -> Reply | None:
    """Answer Claude Code's requests; None for a path that is not the Messages API."""
    route = path.split("?", 1)[0]
    if method == "POST" and route == "/v1/messages/count_tokens":
        return Reply(json={"input_tokens": 1000})
    if method == "POST" and route == "/v1/messages" and isinstance(body, dict):
        if body.get("tools"):
            return main_turn(server, body)
        server.mark(usage=SIDE_USAGE)
        return _reply(body, [{"type": "text", "text": "Fix the calculator"}], SIDE_USAGE, "end_turn")
    if method == "GET" and route.startswith("/v1/models"):
        return Reply(json={"data": [], "has_more": False})
    return None
