"""OpenAI chat completions as Aider calls them (`--no-stream`): the edit is in the reply's text.

Aider offers no tools: it sends a system prompt, then context pairs (read-only files, the repo
map, the files in the chat), each a user message answered by a canned assistant line that
starts with "Ok", then the conversation of this run (the user's message, the model's replies,
aider's reflections: "I added these files", a failed SEARCH block), then a system reminder.
A conversation is told by its first user message after the context pairs; its turn is the
number of assistant replies after that message.

Steps become Aider's `diff` edit format: `edit` a SEARCH/REPLACE block, `write` a block with
an empty SEARCH (a new file, or the whole file replaced), `shell` a ```bash block (what aider
would offer to run), `read` a sentence naming the file (aider adds mentioned files), `raw` the
text in args["text"], `say` the text. Usage is `{prompt_tokens, completion_tokens}`.

Requests that are not a work turn (a commit message or a history summary, asked of the weak
model) are answered with a short text and counted as usage too; with boss's flags none occur.
"""

from __future__ import annotations

from typing import Any

from mock_server import ModelServer, Reply, Step, Usage

SIDE_USAGE = Usage(input_tokens=420, output_tokens=12)
# The system prompts of aider's side requests (aider/prompts.py).
SIDE_MARKERS = ("Git commit messages", "summarize this partial conversation")


def handle(server: ModelServer, method: str, path: str, body: Any) -> Reply | None:
    """Answer Aider's chat-completions requests (None: not this wire's)."""
    if method == "GET" and path.rstrip("/").endswith("/models"):
        return Reply(json={"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]})
    if method != "POST" or not path.split("?")[0].endswith("/chat/completions") or not isinstance(body, dict):
        return None
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    system = "\n".join(text(m.get("content")) for m in messages if m.get("role") == "system")
    if any(marker in system for marker in SIDE_MARKERS):
        server.mark(usage=SIDE_USAGE)
        return completion(body, "Fix the calculator", SIDE_USAGE)
    talk = conversation(messages)
    first = next((text(m.get("content")) for m in talk if m.get("role") == "user"), "")
    turn = server.turn(first, sum(1 for m in talk if m.get("role") == "assistant"))
    server.mark(turn)
    return completion(body, reply_text(turn.step), turn.usage)


def conversation(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages of this run's conversation: after the context pairs, without system ones."""
    talk = [m for m in messages if m.get("role") != "system"]
    start = 0
    while start + 1 < len(talk) and talk[start].get("role") == "user":
        reply = talk[start + 1]
        if reply.get("role") != "assistant" or not text(reply.get("content")).startswith("Ok"):
            break
        start += 2
    return talk[start:]


def user_message(body: dict[str, Any]) -> str:
    """The first user message of the conversation (what aider made of the prompt)."""
    talk = conversation([m for m in body.get("messages") or [] if isinstance(m, dict)])
    return next((text(m.get("content")) for m in talk if m.get("role") == "user"), "")


def context(body: dict[str, Any]) -> str:
    """Everything aider sent around the conversation (system prompts, files, repo map)."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    talk = [id(m) for m in conversation(messages)]
    return "\n".join(text(m.get("content")) for m in messages if id(m) not in talk)


def text(content: Any) -> str:
    """A message's text (a string, or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def block(path: str, old: str, new: str) -> str:
    """A SEARCH/REPLACE block of aider's diff format."""
    return f"{path}\n```\n<<<<<<< SEARCH\n{old}=======\n{new}>>>>>>> REPLACE\n```\n"


def reply_text(step: Step) -> str:
    """The step as the text of an assistant reply in aider's diff edit format."""
    if step.kind == "edit":
        return f"I will change {step.path}.\n\n" + block(step.path, step.old, step.content)
    if step.kind == "write":
        return f"I will write {step.path}.\n\n" + block(step.path, "", step.content)
    if step.kind == "shell":
        return f"Run this:\n\n```bash\n{step.command}\n```\n"
    if step.kind == "read":
        return f"Please add {step.path} to the chat so I can read it."
    if step.kind == "raw":
        return str(step.args.get("text", ""))
    return step.text or "Done."


def completion(body: dict[str, Any], content: str, usage: Usage) -> Reply:
    """A non-streamed chat completion with usage."""
    return Reply(
        json={
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": str(body.get("model") or "gpt-4o"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
            },
        }
    )
