"""The OpenAI Responses API as Codex speaks it: `POST /v1/responses`, answered with SSE.

A request carries the conversation in `input` (a list of items: `message`s, `function_call` /
`custom_tool_call` items with their outputs). The turn number is the count of the model's own
items so far (each call, each assistant message); the conversation is told by the first user
message that is not Codex's own preamble (AGENTS.md instructions, environment context).

The step becomes a call of a tool the request offers: `shell`/`exec_command`/`local_shell` for
commands (argument keys read from the tool's schema), `apply_patch` (a function or a freeform
`custom` tool) for edits. Where the request offers no `apply_patch` tool, an edit is sent as
the shell command `apply_patch <<'EOF' ... EOF`, as such models do. The reply is the SSE stream
`response.created`, one `response.output_item.done` per item, `response.completed` with usage.
"""

from __future__ import annotations

import itertools
import json
import shlex
from typing import Any

from mock_server import ModelServer, Reply, Step, Usage

_ids = itertools.count(1)
SHELL_TOOLS = ("exec_command", "shell", "local_shell", "shell_command")
OWN_ITEMS = ("function_call", "custom_tool_call", "local_shell_call")
PREAMBLE = ("<environment_context>", "<user_instructions>", "# AGENTS.md", "<permissions", "<INSTRUCTIONS>")


def handle(server: ModelServer, method: str, path: str, body: Any) -> Reply | None:
    """Answer `/v1/responses` (and `/v1/models`); None for anything else."""
    if method == "GET" and path.split("?")[0].endswith("/models"):
        return Reply(json={"object": "list", "data": [], "models": []})
    if method != "POST" or not path.split("?")[0].endswith("/responses") or not isinstance(body, dict):
        return None
    items = [i for i in body.get("input") or [] if isinstance(i, dict)]
    turn = server.turn(first_user_text(items), assistant_turns(items))
    server.mark(turn)
    return Reply(sse=stream(reply_items(turn.step, tools(body)), turn.usage, str(body.get("model", ""))))


def first_user_text(items: list[dict[str, Any]]) -> str:
    """The text of the first user message that is the task (not Codex's preamble)."""
    for item in items:
        if item.get("role") != "user":
            continue
        text = message_text(item)
        if text and not text.lstrip().startswith(PREAMBLE):
            return text
    return ""


def message_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = [c.get("text", "") for c in content or [] if isinstance(c, dict)]
    return "".join(str(p) for p in parts)


def assistant_turns(items: list[dict[str, Any]]) -> int:
    """The model's turns so far: each call item, and each assistant message."""
    own = [i for i in items if i.get("type") in OWN_ITEMS or i.get("role") == "assistant"]
    return len(own)


def tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tools the request offers, by name."""
    found: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            name = tool.get("name") or tool.get("type")
            found[str(name)] = tool
    return found


def patch_text(step: Step) -> str:
    """An apply_patch envelope for a write or an edit."""
    if step.kind == "write":
        body = "".join(f"+{line}\n" for line in step.content.splitlines())
        return f"*** Begin Patch\n*** Add File: {step.path}\n{body}*** End Patch\n"
    old = "".join(f"-{line}\n" for line in step.old.splitlines())
    new = "".join(f"+{line}\n" for line in step.content.splitlines())
    return f"*** Begin Patch\n*** Update File: {step.path}\n@@\n{old}{new}*** End Patch\n"


def shell_call(command: str, offered: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A function call of the shell tool offered, with the argument keys its schema names."""
    name = next((n for n in SHELL_TOOLS if n in offered), "shell")
    props = (offered.get(name, {}).get("parameters") or {}).get("properties") or {}
    if "cmd" in props:
        args: dict[str, Any] = {"cmd": command}
    elif name == "shell" and (props.get("command") or {}).get("type") == "array":
        args = {"command": ["bash", "-lc", command]}
    else:
        args = {"command": command}
    return {"type": "function_call", "name": name, "arguments": json.dumps(args)}


def reply_items(step: Step, offered: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The output items of one turn."""
    n = next(_ids)
    if step.kind == "say":
        text = [{"type": "output_text", "text": step.text, "annotations": []}]
        return [{"type": "message", "id": f"msg_{n}", "role": "assistant", "status": "completed",
                 "content": text}]  # fmt: skip
    if step.kind == "shell":
        call = shell_call(step.command, offered)
    elif step.kind in ("write", "edit"):
        patch = patch_text(step)
        tool = offered.get("apply_patch")
        if tool is not None and tool.get("type") == "custom":
            call = {"type": "custom_tool_call", "name": "apply_patch", "input": patch}
        elif tool is not None:
            call = {"type": "function_call", "name": "apply_patch", "arguments": json.dumps({"input": patch})}
        else:
            call = shell_call(f"apply_patch <<'EOF'\n{patch}EOF\n", offered)
    elif step.kind == "read":
        call = shell_call(f"cat {shlex.quote(step.path)}", offered)
    else:
        call = {"type": "function_call", "name": step.tool, "arguments": json.dumps(step.args)}
    return [{**call, "id": f"fc_{n}", "call_id": f"call_{n}", "status": "completed"}]


def usage_json(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.thought_tokens},
            "total_tokens": usage.input_tokens + usage.output_tokens}  # fmt: skip


def stream(items: list[dict[str, Any]], usage: Usage, model: str) -> list[tuple[str | None, Any]]:
    """The SSE events of one response."""
    rid = f"resp_{next(_ids)}"
    base = {"id": rid, "object": "response", "model": model, "output": []}
    events: list[tuple[str | None, Any]] = [
        ("response.created", {"type": "response.created", "response": {**base, "status": "in_progress"}})
    ]
    for index, item in enumerate(items):
        events.append(("response.output_item.done",
                       {"type": "response.output_item.done", "output_index": index, "item": item}))  # fmt: skip
    done = {**base, "status": "completed", "output": items, "usage": usage_json(usage)}
    events.append(("response.completed", {"type": "response.completed", "response": done}))
    return events
