"""OpenAI chat completions (`POST /v1/chat/completions`), as OpenCode's openai-compatible provider calls it.

A main turn is a request that offers tools: the step is translated into a call of the tool the
CLI offered (its names and argument keys are read from the request's `tools`), streamed as SSE
chunks (`choices[0].delta` with `tool_calls` or `content`, a `finish_reason`, then a chunk with
`usage` when `stream_options.include_usage` asks for it, then `[DONE]`). A request without
tools is a side request (OpenCode's title, from its `small_model`): answered with a short text
and usage of its own, which is counted (`server.mark(usage=...)`): OpenCode reports it too.
"""

from __future__ import annotations

import json
from typing import Any

from mock_server import ModelServer, Reply, Step, Usage

TITLE_USAGE = Usage(input_tokens=310, output_tokens=7)
MODEL = "m"


def handle(server: ModelServer, method: str, path: str, body: Any) -> Reply | None:
    """Answer OpenCode's chat-completions requests (None: not this wire's)."""
    if method == "GET" and path.rstrip("/").endswith("/v1/models"):
        return Reply(json={"object": "list", "data": [{"id": MODEL, "object": "model"}]})
    if method != "POST" or not path.split("?")[0].endswith("/chat/completions") or not isinstance(body, dict):
        return None
    messages = body.get("messages") or []
    if not body.get("tools"):
        server.mark(usage=TITLE_USAGE)
        return _reply(body, {"content": "Fix the calculator"}, "stop", TITLE_USAGE)
    first = next((_text(m.get("content")) for m in messages if m.get("role") == "user"), "")
    assistant_turns = sum(1 for m in messages if m.get("role") == "assistant")
    turn = server.turn(first, assistant_turns)
    server.mark(turn)
    call = tool_call(turn.step, _tools(body), f"call_{turn.conversation}_{turn.turn}")
    if call is None:
        return _reply(body, {"content": turn.step.text or "Done."}, "stop", turn.usage)
    return _reply(body, {"tool_calls": [call]}, "tool_calls", turn.usage)


def first_user_text(body: dict[str, Any]) -> str:
    """The text of the first user message (what OpenCode made of the prompt)."""
    return next((_text(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "user"), "")


def tool_results(body: dict[str, Any]) -> list[str]:
    """The text of every tool result in a request (the guard's block message shows here)."""
    return [_text(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "tool"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _tools(body: dict[str, Any]) -> dict[str, set[str]]:
    """Offered tool name -> its argument names."""
    found: dict[str, set[str]] = {}
    for tool in body.get("tools") or []:
        fn = tool.get("function") or {}
        found[str(fn.get("name"))] = set((fn.get("parameters") or {}).get("properties") or {})
    return found


def _key(offered: set[str], *names: str) -> str:
    return next((n for n in names if n in offered), names[0])


def tool_call(step: Step, tools: dict[str, set[str]], call_id: str) -> dict[str, Any] | None:
    """The step as a call of OpenCode's own tools (bash, write, edit, read), or None for text."""
    if step.kind == "say":
        return None
    if step.kind == "raw":
        name, args = step.tool, step.args
    elif step.kind == "shell":
        name = "bash"
        args = {"command": step.command, "description": "Run a command"}
    elif step.kind == "write":
        name = "write"
        args = {_key(tools.get(name, set()), "filePath", "file_path"): step.path, "content": step.content}
    elif step.kind == "edit":
        name = "edit"
        keys = tools.get(name, set())
        args = {_key(keys, "filePath", "file_path"): step.path, _key(keys, "oldString", "old_string"): step.old,
                _key(keys, "newString", "new_string"): step.content}  # fmt: skip
    else:
        name = "read"
        args = {_key(tools.get(name, set()), "filePath", "file_path"): step.path}
    # Called even when the CLI did not offer it (a denied tool): the CLI answers that it is unknown.
    fn = {"name": name, "arguments": json.dumps(args)}
    return {"index": 0, "id": call_id, "type": "function", "function": fn}


def _reply(body: dict[str, Any], delta: dict[str, Any], finish: str, usage: Usage) -> Reply:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1764633600, "model": MODEL}
    counts = {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
              "total_tokens": usage.input_tokens + usage.output_tokens,
              "prompt_tokens_details": {"cached_tokens": usage.cached_tokens}}  # fmt: skip
    if not body.get("stream"):
        message = {"role": "assistant", "content": delta.get("content")}
        if "tool_calls" in delta:
            message["tool_calls"] = [
                {k: v for k, v in c.items() if k != "index"} for c in delta["tool_calls"]
            ]
        return Reply(json={**base, "object": "chat.completion", "usage": counts,
                           "choices": [{"index": 0, "message": message, "finish_reason": finish}]})  # fmt: skip
    chunks: list[tuple[str | None, Any]] = [
        (
            None,
            {
                **base,
                "choices": [{"index": 0, "delta": {"role": "assistant", **delta}, "finish_reason": None}],
            },
        ),
        (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append((None, {**base, "choices": [], "usage": counts}))
    chunks.append((None, "[DONE]"))
    return Reply(sse=chunks)
