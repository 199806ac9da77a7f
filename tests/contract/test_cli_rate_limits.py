"""What each real CLI does when its provider rate-limits it (429) or is overloaded (529, 503).

Each CLI is started once as the worker starts it (its profile's own invocation, `direct`),
against the scripted model server answering its provider's 429 with `retry-after: 1` (see
`limits`): once, then normally (the run succeeds, and how many requests the server saw and how
long the CLI waited are pinned), and for every request (how the CLI gives up: its exit code and
the words the profile's `rate_limit()` reads); then overloaded on every request (Anthropic's
529, OpenAI's 503 `server_is_overloaded`, Gemini's 503 UNAVAILABLE). The CLIs' own retry budgets are cut where they
have a setting (CLAUDE_CODE_MAX_RETRIES, Gemini's general.maxAttempts), so each test takes
seconds; aider, which retries for about 90 s with no setting, is stopped while it waits, as
agent_timeout would stop it. The behaviour with default budgets is in the notes and README
("Tested with").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import limits
import pytest
import wire_aider
import wire_anthropic
import wire_chat
import wire_gemini
import wire_responses
from direct import Ran, point, run_cli
from mock_server import DONE, Logged, ModelServer, Reply, read

from worker.agents.ratelimit import OVERLOADED, RATE_LIMITED, RateLimit
from worker.agents.registry import PROFILES

WIRES = {"claude": wire_anthropic.handle, "codex": wire_responses.handle, "gemini": wire_gemini.handle,
         "opencode": wire_chat.handle, "aider": wire_aider.handle}  # fmt: skip
RATE_LIMIT: dict[str, Callable[..., Reply]] = {
    "claude": limits.anthropic_rate_limit,
    "codex": limits.openai_rate_limit,
    "gemini": limits.gemini_exhausted,
    "opencode": limits.openai_rate_limit,
    "aider": limits.openai_rate_limit,
}
# Gemini: only the turn itself is refused (its model router's classifier request, refused too,
# would add its own five attempts before the turn starts).
ONLY: dict[str, str | Callable[[Logged], bool]] = {"gemini": "streamGenerateContent"}
# OpenCode: one refusal goes to the turn (a request with tools), not to its title request, which
# it may drop without a retry when the turn ends first.
ONCE_ONLY: dict[str, str | Callable[[Logged], bool]] = {
    **ONLY, "opencode": lambda r: isinstance(r.body, dict) and bool(r.body.get("tools"))}  # fmt: skip


@pytest.fixture(params=list(WIRES))
def cli(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(
    cli: str, scratch: Path, cli_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServer]:
    """The scripted model for cli's wire, with cli pointed at it and short retry budgets."""
    with ModelServer(wire=WIRES[cli], log_path=tmp_path / "model-requests.jsonl") as s:
        for key, value in point(cli, s.url, scratch, cli_bin).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "2")
        settings = scratch / ".gemini" / "settings.json"
        if settings.exists():
            data = json.loads(settings.read_text())
            settings.write_text(json.dumps({**data, "general": {"maxAttempts": 2}}))
        yield s


def posts(server: ModelServer) -> list[Logged]:
    return [r for r in server.requests if r.method == "POST"]


def retry_wait(server: ModelServer) -> float:
    """Seconds between the first refused request and the CLI's next try of the same request."""
    first = server.refused()[0]
    kind = _kind(first)
    again = next(r for r in posts(server) if r.at > first.at and _kind(r) == kind)
    return again.at - first.at


def _kind(r: Logged) -> tuple[str, bool]:
    return r.path, bool(isinstance(r.body, dict) and r.body.get("tools"))


def ran_ok(ran: Ran) -> None:
    assert ran.exit_code == 0 and not ran.timed_out, ran.output[-3000:]


# POSTs the server saw for one 429 then a one-turn run, and how long each CLI waited on retry-after: 1.
ONCE: dict[str, tuple[range, float, float]] = {
    "claude": (range(2, 3), 0.9, 3),  # the turn, refused then answered; waits the retry-after
    "codex": (range(2, 3), 0.9, 3),
    "gemini": (range(3, 4), 3.4, 8),  # + the router's request; waits its own backoff (5 s +-30%), not 1 s
    "opencode": (range(2, 4), 0.7, 3),  # + its title request, sent beside the turn, when it gets to it
    "aider": (range(2, 3), 0.9, 3),  # retried inside the OpenAI client, silently
}


def test_one_429_with_retry_after_then_the_run_succeeds(
    cli: str, server: ModelServer, tmp_path: Path
) -> None:
    server.refuse(RATE_LIMIT[cli](1), times=1, only=ONCE_ONLY.get(cli, ""))
    ran = run_cli(cli, tmp_path, timeout=120)
    ran_ok(ran)
    count, least, most = ONCE[cli]
    assert len(server.refused()) == 1
    assert len(posts(server)) in count, [(r.path, r.status) for r in server.requests]
    assert least <= retry_wait(server) <= most
    assert [r.turn for r in server.main_requests()] == [0]  # the turn was answered, once
    profile = PROFILES[cli]
    assert profile.rate_limit(ran.output) is None and profile.failure(ran.output) is None


# How each CLI ends when every request is refused (429, retry-after: 1): exit code (None:
# stopped by the test while it waited), POSTs seen (OpenCode: 6 tries of the turn, and up to 3 of
# its title request when it sends one), and what rate_limit() reads.
FOREVER: dict[str, tuple[int | None, range, RateLimit]] = {
    "claude": (1, range(3, 4), RateLimit(RATE_LIMITED, limits.ANTHROPIC_429, None, 429, 2)),
    "codex": (1, range(6, 7), RateLimit(RATE_LIMITED, "exceeded retry limit, last status: 429 Too Many Requests", None, 429, 5)),
    "gemini": (173, range(3, 4), RateLimit(RATE_LIMITED, limits.GEMINI_GAVE_UP, 1.0, None, 2)),
    "opencode": (1, range(6, 10), RateLimit(RATE_LIMITED, limits.openai_message("1s"), 1.0, 429, 0)),
    "aider": (None, range(0), RateLimit(RATE_LIMITED, limits.AIDER_429, 1.0, None, 0)),
}  # fmt: skip


def test_429_on_every_request_ends_the_run_with_words_the_profile_reads(
    cli: str, server: ModelServer, tmp_path: Path
) -> None:
    server.refuse(RATE_LIMIT[cli](1), only=ONLY.get(cli, ""))
    ran = run_cli(cli, tmp_path, timeout=12 if cli == "aider" else 120)
    exit_code, count, expected = FOREVER[cli]
    found = PROFILES[cli].rate_limit(ran.output)
    assert found is not None, ran.output[-3000:]
    if exit_code is None:  # aider: stopped while it waits between its own retries
        assert ran.timed_out and len(posts(server)) >= 3, ran.output
        assert (found.kind, found.message, found.retry_after, found.status) == (
            expected.kind, expected.message, expected.retry_after, expected.status)  # fmt: skip
        assert found.retries >= 1
        return
    assert (ran.exit_code, ran.timed_out) == (exit_code, False), ran.output[-3000:]
    assert found == expected
    assert len(posts(server)) in count and not server.main_requests()


OVERLOAD: dict[str, Callable[[], Reply]] = {
    "claude": limits.anthropic_overloaded,  # 529, no retry-after
    "codex": limits.openai_overloaded,  # 503 server_is_overloaded, no retry-after
    "gemini": limits.gemini_overloaded,  # 503 UNAVAILABLE
    "opencode": lambda: limits.openai_overloaded(1),
    "aider": lambda: limits.openai_overloaded(1),
}
# Exit code (None: stopped by the test while it waited), POSTs seen, what rate_limit() reads
# (Claude's message ends with the gateway's address: its start is compared).
OVERLOAD_END: dict[str, tuple[int | None, range, RateLimit]] = {
    "claude": (1, range(3, 4), RateLimit(OVERLOADED, "API Error: 529 Overloaded. This is a server-side issue, usually "
                                 "temporary — try again in a moment. If it persists, check your inference gateway",
                                 None, 529, 2)),
    "codex": (1, range(5, 6), RateLimit(OVERLOADED, "Selected model is at capacity. Please try a different model.")),
    "gemini": (247, range(3, 4), RateLimit(OVERLOADED, "[API Error: The model is overloaded. Please try again later.]",
                                   None, None, 2)),
    "opencode": (1, range(6, 10), RateLimit(OVERLOADED, "The server is overloaded or not ready yet.", 1.0, 503)),
    "aider": (None, range(0), RateLimit(OVERLOADED, "litellm.ServiceUnavailableError: ServiceUnavailableError: "
                                     "OpenAIException - The server is overloaded or not ready yet. The API "
                                     "provider's servers are down or overloaded.")),
}  # fmt: skip


def test_overload_on_every_request_ends_the_run_as_an_overload(
    cli: str, server: ModelServer, tmp_path: Path
) -> None:
    server.refuse(OVERLOAD[cli](), only=ONLY.get(cli, ""))
    ran = run_cli(cli, tmp_path, timeout=12 if cli == "aider" else 120)
    exit_code, count, expected = OVERLOAD_END[cli]
    found = PROFILES[cli].rate_limit(ran.output)
    assert found is not None, ran.output[-3000:]
    assert (found.kind, found.retry_after, found.status) == (
        expected.kind,
        expected.retry_after,
        expected.status,
    )
    assert found.message.startswith(expected.message), found.message
    if exit_code is None:  # aider: stopped while it waits between its own retries
        assert ran.timed_out and found.retries >= 1, ran.output
        return
    assert (ran.exit_code, ran.timed_out, found.retries) == (exit_code, False, expected.retries), ran.output[
        -3000:
    ]
    assert len(posts(server)) in count and not server.main_requests()


@pytest.mark.parametrize("cli", ["claude", "codex", "gemini", "opencode"])
def test_a_limit_met_after_the_run_made_a_tool_call_is_still_read(
    cli: str, server: ModelServer, tmp_path: Path
) -> None:
    # The first turn is answered (a read of src/calc.py), every later request is refused: the
    # run did some work before its provider stopped it, which is not "before doing any work".
    server.script([read("src/calc.py"), DONE])
    is_turn = ONCE_ONLY.get(cli) or (lambda r: isinstance(r.body, dict) and bool(r.body.get("tools")))
    server.refuse(RATE_LIMIT[cli](1), only=ONLY.get(cli) or is_turn, after=1)
    ran = run_cli(cli, tmp_path, timeout=120)
    found = PROFILES[cli].rate_limit(ran.output)
    assert found is not None and found.kind == RATE_LIMITED, ran.output[-3000:]
    assert [r.turn for r in server.main_requests()] == [0] and server.refused()
    assert ran.exit_code == FOREVER[cli][0], ran.output[-3000:]


def test_the_server_refuses_k_requests_with_the_providers_answer_then_answers() -> None:
    import urllib.error
    import urllib.request

    def post(url: str) -> tuple[int, dict[str, str], dict[str, object]]:
        body = json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{}]}
        ).encode()
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read())

    with ModelServer(wire=wire_anthropic.handle) as s:
        s.refuse(limits.anthropic_rate_limit(2), times=2, only="/v1/messages")
        first, second, third = (post(f"{s.url}/v1/messages") for _ in range(3))
    assert [first[0], second[0], third[0]] == [429, 429, 200]
    assert first[1]["retry-after"] == "2" and first[2]["error"] == {
        "type": "rate_limit_error", "message": limits.ANTHROPIC_MESSAGE}  # fmt: skip
    assert [(r.status, r.refused) for r in s.requests] == [(429, True), (429, True), (200, False)]
    assert [r.turn for r in s.main_requests()] == [0] and s.requests[0].at <= s.requests[2].at
    with ModelServer(wire=wire_anthropic.handle) as s:
        s.refuse(limits.anthropic_overloaded(), only="/count_tokens")  # not this path: answered
        assert post(f"{s.url}/v1/messages")[0] == 200 and not s.refused()
