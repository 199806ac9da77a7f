"""Read usage and the final message from the output formats of the agent CLIs.

Each function takes an agent's log (stdout and stderr interleaved, as the worker records it)
and reads only the machine format the CLI prints; lines that are not JSON are skipped, so
warnings on stderr do no harm. Usage keys are only those the CLI reports:

- Claude Code (`--output-format stream-json --verbose`): the last `result` event;
  `input_tokens` counts cache reads and writes too (the API reports them apart).
- Codex (`exec --json`): the last `turn.completed` usage (a running total for the thread);
  its `input_tokens` already includes cached input. No money.
- Gemini CLI (`--output-format stream-json`): the last `result` event's `stats`; output is
  `total_tokens - input_tokens` (thinking tokens are only in the total). No money.
- OpenCode (`run --format json`): the sum of every `step_finish` part; input counts cache
  reads and writes, output counts reasoning.
- Aider: the console's `Tokens: ... Cost: ...` lines (rounded by aider: 1.2k tokens, $0.01),
  or exactly from its `--analytics-log` JSON lines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from boss.core import runlog

Usage = dict[str, Any]


def json_lines(output: str) -> list[dict[str, Any]]:
    """The JSON objects printed one per line in output, in order."""
    events: list[dict[str, Any]] = []
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            events.append(data)
    return events


def _num(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _last(events: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    found = [e for e in events if e.get("type") == kind]
    return found[-1] if found else None


def _tokens(usage: dict[str, Any], *keys: str) -> int | None:
    values = [n for n in (_num(usage.get(k)) for k in keys) if n is not None]
    return int(sum(values)) if values else None


def _put(found: Usage, key: str, value: int | float | None) -> None:
    if value is not None:
        found[key] = value


# --- Claude Code -----------------------------------------------------------------------------

_CLAUDE_INPUT = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def claude_usage(output: str) -> Usage:
    """Cost and tokens from the `result` event (per-message usage when the run was cut short)."""
    events = json_lines(output)
    found: Usage = {}
    result = _last(events, "result")
    if result is not None:
        usage = _dict(result.get("usage"))
        _put(found, "cost_usd", _num(result.get("total_cost_usd")))
        _put(found, "input_tokens", _tokens(usage, *_CLAUDE_INPUT))
        _put(found, "output_tokens", _tokens(usage, "output_tokens"))
        return found
    # No result: the run was stopped. Each API message is repeated once per content block
    # with the same usage, so count each message id once.
    per_message: dict[str, dict[str, Any]] = {}
    for event in events:
        message = _dict(event.get("message"))
        if event.get("type") == "assistant" and isinstance(message.get("usage"), dict):
            per_message[str(message.get("id", len(per_message)))] = message["usage"]
    if per_message:
        found["input_tokens"] = sum(_tokens(u, *_CLAUDE_INPUT) or 0 for u in per_message.values())
        found["output_tokens"] = sum(_tokens(u, "output_tokens") or 0 for u in per_message.values())
    return found


def claude_final(output: str) -> str:
    """The `result` text, or the last assistant text when there is no result event."""
    events = json_lines(output)
    result = _last(events, "result")
    if result is not None and isinstance(result.get("result"), str):
        return str(result["result"])
    for event in reversed(events):
        if event.get("type") != "assistant":
            continue
        content = _dict(event.get("message")).get("content")
        texts = [
            str(block.get("text", ""))
            for block in content or []
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        if texts:
            return "\n".join(texts)
    return ""


# --- Codex -----------------------------------------------------------------------------------


def codex_usage(output: str) -> Usage:
    """Tokens from the last `turn.completed` event."""
    return _event_tokens(output, "turn.completed", "usage")


def codex_final(output: str) -> str:
    """The text of the last completed `agent_message` item."""
    for event in reversed(json_lines(output)):
        item = _dict(event.get("item"))
        if event.get("type") == "item.completed" and item.get("type") == "agent_message":
            return str(item.get("text", ""))
    return ""


# --- Gemini CLI ------------------------------------------------------------------------------


def gemini_usage(output: str) -> Usage:
    """Tokens from the `stats` of the last `result` event.

    Gemini's `output_tokens` leaves out thinking tokens, which only its `total_tokens` counts:
    the output is the total less the input (the model bills thoughts as output).
    """
    found = _event_tokens(output, "result", "stats")
    event = _last(json_lines(output), "result")
    total = _num(_dict(event.get("stats")).get("total_tokens")) if event else None
    if total is not None and "input_tokens" in found:
        found["output_tokens"] = max(int(total) - found["input_tokens"], found.get("output_tokens", 0))
    return found


def _event_tokens(output: str, event_type: str, field: str) -> Usage:
    """input/output tokens from `field` of the last event of a type (Codex, Gemini)."""
    event = _last(json_lines(output), event_type)
    if event is None:
        return {}
    counts = _dict(event.get(field))
    found: Usage = {}
    _put(found, "input_tokens", _tokens(counts, "input_tokens"))
    _put(found, "output_tokens", _tokens(counts, "output_tokens"))
    return found


def gemini_final(output: str) -> str:
    """The assistant's text after its last tool call (streamed deltas joined)."""
    parts: list[str] = []
    everything: list[str] = []
    for event in json_lines(output):
        kind = event.get("type")
        if kind in ("tool_use", "tool_result"):
            parts = []
        elif kind == "message" and event.get("role") == "assistant":
            text = str(event.get("content", ""))
            parts.append(text)
            everything.append(text)
    return "".join(parts or everything)


# --- OpenCode --------------------------------------------------------------------------------


def opencode_usage(output: str) -> Usage:
    """Cost and tokens summed over every `step_finish` part."""
    found: Usage = {}
    cost = 0.0
    input_tokens = output_tokens = 0
    steps = 0
    for event in json_lines(output):
        if event.get("type") != "step_finish":
            continue
        part = _dict(event.get("part"))
        tokens = _dict(part.get("tokens"))
        cache = _dict(tokens.get("cache"))
        steps += 1
        cost += _num(part.get("cost")) or 0
        inputs = (tokens.get("input"), *cache.values())
        input_tokens += int(sum(_num(v) or 0 for v in inputs))
        outputs = (tokens.get("output"), tokens.get("reasoning"))
        output_tokens += int(sum(_num(v) or 0 for v in outputs))
    if steps:
        found["cost_usd"] = round(cost, 6)
        found.update(input_tokens=input_tokens, output_tokens=output_tokens)
    return found


def opencode_final(output: str) -> str:
    """The text parts after the last tool call, joined."""
    parts: list[str] = []
    everything: list[str] = []
    for event in json_lines(output):
        kind = event.get("type")
        if kind == "tool_use":
            parts = []
        elif kind == "text":
            text = str(_dict(event.get("part")).get("text", ""))
            parts.append(text)
            everything.append(text)
    return "\n".join(parts or everything)


# --- Aider -----------------------------------------------------------------------------------

_TOKENS = re.compile(
    r"Tokens: (?P<sent>[\d.]+k?) sent(?:, (?P<write>[\d.]+k?) cache write)?"
    r"(?:, (?P<hit>[\d.]+k?) cache hit)?, (?P<received>[\d.]+k?) received\."
)
_COST = re.compile(r"Cost: \$(?P<message>[\d.]+) message, \$(?P<session>[\d.]+) session\.")
# Lines aider prints around the model's reply (no-pretty mode).
_AIDER_NOISE = re.compile(
    r"^(Aider v|Main model:|Weak model:|Editor model:|Model:|Git repo:|Repo-map:|Added .* to "
    r"the chat|Tokens: |Cost: |Applied edit to |Commit [0-9a-f]+ |Committing |Use /help|"
    r"https://aider\.chat|Warning: |Analytics |Update git name|Update git email)"
)


def _aider_count(text: str | None) -> int:
    if not text:
        return 0
    if text.endswith("k"):
        return round(float(text[:-1]) * 1000)
    return int(float(text))


def aider_usage(output: str) -> Usage:
    """Tokens summed over the console's `Tokens:` lines; cost from the last `session` total."""
    found: Usage = {}
    lines = list(_TOKENS.finditer(output))
    if lines:
        found["input_tokens"] = sum(_aider_count(m["sent"]) + _aider_count(m["hit"]) for m in lines)
        found["output_tokens"] = sum(_aider_count(m["received"]) for m in lines)
    costs = list(_COST.finditer(output))
    if costs:
        found["cost_usd"] = float(costs[-1]["session"])
    return found


def aider_analytics_usage(path: Path) -> Usage:
    """Exact tokens and cost from the `message_send` events of an `--analytics-log` file."""
    # Written by the agent's CLI: read bounded, like its log (a missing file reads empty).
    events = json_lines(runlog.read(path))
    sends = [_dict(e.get("properties")) for e in events if e.get("event") == "message_send"]
    if not sends:
        return {}
    found: Usage = {
        "input_tokens": sum(int(_num(p.get("prompt_tokens")) or 0) for p in sends),
        "output_tokens": sum(int(_num(p.get("completion_tokens")) or 0) for p in sends),
    }
    total = _num(sends[-1].get("total_cost"))
    cost = total if total is not None else sum(_num(p.get("cost")) or 0 for p in sends)
    found["cost_usd"] = round(float(cost), 6)
    return found


def aider_final(output: str) -> str:
    """Aider's console output without its banner, status and usage lines."""
    kept = [line for line in output.splitlines() if not _AIDER_NOISE.match(line)]
    return "\n".join(kept).strip()
