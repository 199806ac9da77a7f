"""Reading usage and the final message from each CLI's output, including odd cases."""

from __future__ import annotations

import json

from worker.agents import output as out


def lines(*events: dict, noise: str = "warning: something on stderr") -> str:
    return "\n".join([noise, *(json.dumps(e) for e in events), "{not json", "[1, 2]"]) + "\n"


def test_json_lines_keeps_objects_only():
    text = lines({"a": 1}, {"b": 2})
    assert out.json_lines(text) == [{"a": 1}, {"b": 2}]
    assert out.json_lines("") == []


def test_claude_result_usage_counts_cache_tokens_as_input():
    result = {"type": "result", "subtype": "success", "result": "ok", "total_cost_usd": 0.5,
              "usage": {"input_tokens": 10, "cache_creation_input_tokens": 100,
                        "cache_read_input_tokens": 1000, "output_tokens": 7}}  # fmt: skip
    text = lines({"type": "system", "subtype": "init"}, result)
    assert out.claude_usage(text) == {"cost_usd": 0.5, "input_tokens": 1110, "output_tokens": 7}
    assert out.claude_final(text) == "ok"


def test_claude_without_a_result_sums_each_message_once():
    def assistant(mid: str, content: list) -> dict:
        usage = {"input_tokens": 5, "cache_read_input_tokens": 5, "output_tokens": 3}
        return {"type": "assistant", "message": {"id": mid, "content": content, "usage": usage}}

    text = lines(
        assistant("m1", [{"type": "text", "text": "first"}]),
        assistant("m1", [{"type": "tool_use", "name": "Bash"}]),  # same message, second block
        assistant("m2", [{"type": "text", "text": "last words"}]),
    )
    assert out.claude_usage(text) == {"input_tokens": 20, "output_tokens": 6}
    assert out.claude_final(text) == "last words"
    assert out.claude_usage("killed before any output") == {}
    assert out.claude_final("") == ""


def test_claude_error_result_has_no_result_text():
    text = lines(
        {"type": "assistant", "message": {"id": "m", "content": [{"type": "text", "text": "hm"}]}},
        {"type": "result", "subtype": "error_max_turns", "is_error": True, "errors": ["max"],
         "total_cost_usd": 0.25, "usage": {"output_tokens": 1}},
    )  # fmt: skip
    assert out.claude_final(text) == "hm"
    assert out.claude_usage(text) == {"cost_usd": 0.25, "output_tokens": 1}


def test_codex_reads_the_last_turn_and_the_last_agent_message():
    text = lines(
        {"type": "thread.started", "thread_id": "t"},
        {"type": "item.completed", "item": {"id": "item_0", "type": "agent_message", "text": "a"}},
        {"type": "item.completed", "item": {"id": "item_1", "type": "reasoning", "text": "r"}},
        {"type": "turn.completed", "usage": {"input_tokens": 5, "cached_input_tokens": 2, "output_tokens": 1}},
        {"type": "item.completed", "item": {"id": "item_2", "type": "agent_message", "text": "b"}},
        {"type": "turn.completed", "usage": {"input_tokens": 9, "cached_input_tokens": 4, "output_tokens": 3}},
    )  # fmt: skip
    # Codex reports a running total for the thread: the last one is the run's usage.
    assert out.codex_usage(text) == {"input_tokens": 9, "output_tokens": 3}
    assert out.codex_final(text) == "b"
    assert out.codex_usage(lines({"type": "turn.failed", "error": {"message": "x"}})) == {}
    assert out.codex_final("") == ""


def test_gemini_final_text_is_the_answer_after_the_last_tool():
    text = lines(
        {"type": "init", "session_id": "s", "model": "m"},
        {"type": "message", "role": "user", "content": "the prompt"},
        {"type": "message", "role": "assistant", "content": "Let me ", "delta": True},
        {"type": "message", "role": "assistant", "content": "look.", "delta": True},
        {"type": "tool_use", "tool_name": "read_file", "tool_id": "1", "parameters": {}},
        {"type": "tool_result", "tool_id": "1", "status": "success", "output": "..."},
        {"type": "message", "role": "assistant", "content": "All ", "delta": True},
        {"type": "message", "role": "assistant", "content": "done.", "delta": True},
        {"type": "result", "status": "success", "stats": {"input_tokens": 40, "output_tokens": 4}},
    )
    assert out.gemini_final(text) == "All done."
    assert out.gemini_usage(text) == {"input_tokens": 40, "output_tokens": 4}
    only_tools = lines(
        {"type": "message", "role": "assistant", "content": "before"},
        {"type": "tool_use", "tool_name": "x", "tool_id": "1"},
    )
    assert out.gemini_final(only_tools) == "before"
    assert out.gemini_usage("") == {}


def test_opencode_sums_steps_and_joins_the_last_texts():
    def step(cost: float, inp: int, outp: int, reasoning: int, read: int) -> dict:
        tokens = {"input": inp, "output": outp, "reasoning": reasoning,
                  "cache": {"read": read, "write": 1}}  # fmt: skip
        return {"type": "step_finish", "part": {"type": "step-finish", "cost": cost, "tokens": tokens}}

    text = lines(
        {"type": "text", "part": {"type": "text", "text": "plan"}},
        {"type": "tool_use", "part": {"type": "tool", "tool": "bash"}},
        step(0.1, 10, 2, 1, 5),
        {"type": "text", "part": {"type": "text", "text": "one"}},
        {"type": "text", "part": {"type": "text", "text": "two"}},
        step(0.2, 20, 3, 0, 0),
        {"type": "done", "reason": "idle", "rejected": []},
    )
    assert out.opencode_usage(text) == {"cost_usd": 0.3, "input_tokens": 37, "output_tokens": 6}
    assert out.opencode_final(text) == "one\ntwo"
    assert out.opencode_usage("") == {}


def test_aider_console_usage_with_cache_and_several_messages():
    text = (
        "Aider v0.86.1\nMain model: sonnet with diff edit format\n\nFirst answer\n\n"
        "Tokens: 2.5k sent, 1.2k cache write, 3.0k cache hit, 150 received.\n"
        "Cost: $0.02 message, $0.02 session.\n"
        "Applied edit to a.py\n\nSecond answer\n\n"
        "Tokens: 12k sent, 1.0k received. Cost: $0.0040 message, $0.03 session.\n"
    )
    assert out.aider_usage(text) == {"input_tokens": 17500, "output_tokens": 1150, "cost_usd": 0.03}
    assert out.aider_final(text) == "First answer\n\n\nSecond answer"
    assert out.aider_usage("Tokens: 116 sent, 30 received.\n") == {"input_tokens": 116, "output_tokens": 30}
    assert out.aider_usage("") == {}


def test_aider_analytics_log_is_exact(tmp_path):
    log = tmp_path / "events.jsonl"
    events = [
        {"event": "launched", "properties": {}},
        {"event": "message_send", "properties": {"prompt_tokens": 1234, "completion_tokens": 56,
                                                 "cost": 0.0123, "total_cost": 0.0123}},
        {"event": "message_send", "properties": {"prompt_tokens": 100, "completion_tokens": 4,
                                                 "cost": 0.001, "total_cost": 0.0133}},
    ]  # fmt: skip
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert out.aider_analytics_usage(log) == {"input_tokens": 1334, "output_tokens": 60, "cost_usd": 0.0133}
    log.write_text(json.dumps({"event": "message_send", "properties": {"prompt_tokens": 1, "cost": 0.5}}))
    assert out.aider_analytics_usage(log) == {"input_tokens": 1, "output_tokens": 0, "cost_usd": 0.5}
    log.write_text(json.dumps({"event": "launched"}))
    assert out.aider_analytics_usage(log) == {}
    assert out.aider_analytics_usage(tmp_path / "missing.jsonl") == {}


def test_numbers_that_are_not_numbers_are_ignored():
    result = {"type": "result", "total_cost_usd": "0.5", "usage": {"input_tokens": True, "output_tokens": 2}}
    assert out.claude_usage(lines(result)) == {"output_tokens": 2}
