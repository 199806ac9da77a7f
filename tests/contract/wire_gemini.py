"""Gemini generateContent on the scripted model server (what Gemini CLI 0.61 calls).

- `POST /v1beta/models/{m}:streamGenerateContent?alt=sse`: a main turn. The reply is SSE
  `data:` lines of GenerateContentResponse chunks: the step as a text part or a
  `functionCall {name, args}` in the tool vocabulary the request declared, then a last chunk
  with `finishReason` and `usageMetadata`.
- `POST ...:generateContent`: side calls (next-speaker checks, edit correction, summaries):
  a plain JSON answer, with usage.
- `POST ...:countTokens` and `GET /v1beta/models`: small plausible answers, no usage.

The conversation is told by the text of its first user turn (Gemini sends the prompt there,
after its own session context, which holds the worktree path); assistant turns are the
`model` contents of the history.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mock_server import ModelServer, Reply, Step, Turn, Usage

MODEL = "gemini-2.5-pro"
_ROUTE = re.compile(r"^/v1beta/models/(?P<model>[^:/?]+):(?P<verb>\w+)")


def handle(server: ModelServer, method: str, path: str, body: Any) -> Reply | None:
    """Answer a Gemini API request (None: not a Gemini path)."""
    if method == "GET" and path.split("?")[0].rstrip("/") == "/v1beta/models":
        return Reply(json={"models": [{"name": f"models/{MODEL}", "displayName": MODEL,
                                       "supportedGenerationMethods": ["generateContent"]}]})  # fmt: skip
    found = _ROUTE.match(path)
    if method != "POST" or found is None:
        return None
    verb = found["verb"]
    body = body if isinstance(body, dict) else {}
    if verb == "countTokens":
        return Reply(json={"totalTokens": 100})
    if verb == "streamGenerateContent":
        return _main(server, body)
    if verb == "generateContent":
        return _side(server, body)
    return None


def usage_metadata(usage: Usage) -> dict[str, int]:
    """Gemini's usageMetadata: thoughts are reported apart and only summed in the total."""
    return {"promptTokenCount": usage.input_tokens, "candidatesTokenCount": usage.output_tokens,
            "thoughtsTokenCount": usage.thought_tokens, "cachedContentTokenCount": usage.cached_tokens,
            "totalTokenCount": usage.input_tokens + usage.output_tokens + usage.thought_tokens}  # fmt: skip


def with_thoughts(usage: Usage, turn: int) -> Usage:
    """The turn's usage with thinking tokens (a thinking model reports them on every turn)."""
    return Usage(usage.input_tokens, usage.output_tokens, usage.cached_tokens, 40 + 3 * turn)


def _main(server: ModelServer, body: dict[str, Any]) -> Reply:
    contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
    turn = server.turn(_first_user_text(contents), sum(1 for c in contents if c.get("role") == "model"))
    turn = Turn(turn.step, with_thoughts(turn.usage, turn.turn), turn.conversation, turn.turn)
    server.mark(turn)
    part = _part(turn.step, _declared(body))
    chunks: list[tuple[str | None, Any]] = [
        (None, {"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}]}),
        (None, {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP",
                                "index": 0}], "usageMetadata": usage_metadata(turn.usage),
                "modelVersion": MODEL}),
    ]  # fmt: skip
    return Reply(sse=chunks)


def _side(server: ModelServer, body: dict[str, Any]) -> Reply:
    usage = Usage(input_tokens=300, output_tokens=20)
    server.mark(usage=usage)
    config = body.get("generationConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    text = json.dumps(_fill(schema)) if isinstance(schema, dict) else "Fix the calculator"
    return Reply(json={"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                       "finishReason": "STOP", "index": 0}],
                       "usageMetadata": usage_metadata(usage), "modelVersion": MODEL})  # fmt: skip


def _fill(schema: dict[str, Any]) -> Any:
    """A value of a JSON schema (the router's complexity score, the next-speaker check...)."""
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _fill(v) for k, v in props.items() if isinstance(v, dict)}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 10
    if kind == "boolean":
        return False
    if schema.get("enum"):
        return "user" if "user" in schema["enum"] else schema["enum"][0]
    return "simple"


def _first_user_text(contents: list[dict[str, Any]]) -> str:
    """The text of the user turns before the first model turn (Gemini's context, then the prompt)."""
    texts: list[str] = []
    for content in contents:
        if content.get("role") == "model":
            break
        texts += [str(p["text"]) for p in content.get("parts") or [] if isinstance(p, dict) and "text" in p]
    return "\n".join(texts)


def _declared(body: dict[str, Any]) -> dict[str, set[str]]:
    """Tool name -> its parameter names, from the request's functionDeclarations."""
    found: dict[str, set[str]] = {}
    for tool in body.get("tools") or []:
        for decl in (tool or {}).get("functionDeclarations") or []:
            schema = decl.get("parametersJsonSchema") or decl.get("parameters") or {}
            found[str(decl.get("name"))] = set((schema.get("properties") or {}).keys())
    return found


def _pick(params: set[str], *keys: str) -> str:
    return next((k for k in keys if k in params), keys[0])


def _part(step: Step, tools: dict[str, set[str]]) -> dict[str, Any]:
    if step.kind == "say":
        return {"text": step.text}
    if step.kind == "shell":
        params = tools.get("run_shell_command", set())
        args: dict[str, Any] = {"command": step.command}
        if "description" in params:
            args["description"] = "run a command"
        return {"functionCall": {"name": "run_shell_command", "args": args}}
    if step.kind == "write":
        key = _pick(tools.get("write_file", set()), "file_path", "absolute_path", "path")
        return {"functionCall": {"name": "write_file", "args": {key: step.path, "content": step.content}}}
    if step.kind == "edit":
        params = tools.get("replace", set())
        args = {_pick(params, "file_path", "absolute_path"): step.path, "old_string": step.old,
                "new_string": step.content}  # fmt: skip
        if "instruction" in params:
            args["instruction"] = "Apply the change."
        return {"functionCall": {"name": "replace", "args": args}}
    if step.kind == "read":
        key = _pick(tools.get("read_file", set()), "file_path", "absolute_path", "path")
        return {"functionCall": {"name": "read_file", "args": {key: step.path}}}
    return {"functionCall": {"name": step.tool, "args": dict(step.args)}}
