"""Each profile tells a run its provider rate-limited or overloaded from what the real CLI printed.

The fixtures in tests/fixtures/ratelimit/ are agent logs of the real CLIs (stdout and stderr in
one stream, as the worker keeps them), captured against the contract suite's model server
answering 429 with retry-after (`tests/contract/limits.py`): a 429 the CLI retried and got past
(no rate limit: the run went on), a 429 it gave up on, a run stopped while it waited to retry.
tests/contract/test_cli_rate_limits.py makes the same runs with the real CLIs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from boss.core.config import Config
from worker.agents import ratelimit as rl
from worker.agents.ratelimit import OVERLOADED, RATE_LIMITED, RateLimit
from worker.agents.registry import get_profile

FIXTURES = Path(__file__).parent / "fixtures" / "ratelimit"
CLAUDE_429 = (
    "API Error: Request rejected (429) · This request would exceed the rate limit for your organization of 50 "
    "requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."
)
OPENAI_429 = (
    "Rate limit reached for gpt-5-codex in organization org-scratch on requests per min (RPM): Limit 3, Used 3, "
    "Requested 1. Please try again in {}. Visit https://platform.openai.com/account/rate-limits to learn more."
)
AIDER_429 = (
    "litellm.RateLimitError: RateLimitError: OpenAIException - " + OPENAI_429 + " The API provider has rate "
    "limited you. Try again later or check your quotas."
)
GEMINI_429 = (
    "[API Error: You exceeded your current quota, please check your plan and billing details. Please retry in 1s. "
    "Suggested retry after 1s.] Please wait and try again later. To increase your limits, request a quota "
    "increase through AI Studio, or switch to another /auth method"
)


def read(name: str) -> str:
    return (FIXTURES / f"{name}.log").read_text()


def limit_of(cli: str, name: str) -> RateLimit | None:
    return get_profile(cli, Config()).rate_limit(read(name))


@pytest.mark.parametrize(
    "name",
    [
        "claude-429-retried",
        "codex-429-retried",
        "gemini-429-retried",
        "opencode-429-retried",
        "aider-429-retried",
    ],
)
def test_a_429_the_cli_retried_past_is_no_rate_limit(name: str) -> None:
    cli = name.split("-")[0]
    assert limit_of(cli, name) is None
    assert get_profile(cli, Config()).failure(read(name)) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude-429-gave-up", RateLimit(RATE_LIMITED, CLAUDE_429, None, 429, 2)),
        ("claude-429-gave-up-after-10", RateLimit(RATE_LIMITED, CLAUDE_429, None, 429, 10)),
        # A retry-after over 60 s: Claude does not retry at all (and does not say what was asked).
        ("claude-429-retry-after-61", RateLimit(RATE_LIMITED, CLAUDE_429, None, 429, 0)),
        ("codex-429-gave-up", RateLimit(RATE_LIMITED, "exceeded retry limit, last status: 429 Too Many Requests",
                                        None, 429, 5)),
        ("codex-429-no-retry-after", RateLimit(RATE_LIMITED, "exceeded retry limit, last status: 429 Too Many "
                                               "Requests", None, 429, 0)),
        ("gemini-429-gave-up", RateLimit(RATE_LIMITED, GEMINI_429, 1.0, None, 2)),
        ("opencode-429-gave-up", RateLimit(RATE_LIMITED, OPENAI_429.format("1s"), 1.0, 429, 0)),
        ("opencode-429-no-retry-after", RateLimit(RATE_LIMITED, OPENAI_429.format("20s"), 20.0, 429, 0)),
        ("aider-429-gave-up", RateLimit(RATE_LIMITED, AIDER_429.format("1s"), 1.0, None, 8)),
        ("aider-429-no-retry-after", RateLimit(RATE_LIMITED, AIDER_429.format("20s"), 20.0, None, 8)),
    ],
)  # fmt: skip
def test_a_429_the_cli_gave_up_on_is_a_rate_limit(name: str, expected: RateLimit) -> None:
    assert limit_of(name.split("-")[0], name) == expected


def test_claudes_529_is_an_overload() -> None:
    found = limit_of("claude", "claude-529-gave-up")
    assert found is not None and (found.kind, found.status, found.retries) == (OVERLOADED, 529, 2)
    assert found.message.startswith(
        "API Error: 529 Overloaded. This is a server-side issue, usually temporary"
    )


@pytest.mark.parametrize(
    ("name", "message", "retry_after", "retries"),
    [
        ("claude-429-stopped", "API request failed: rate_limit (HTTP 429), retry 2 of 10", None, 2),
        # SIGTERM at agent_timeout: Claude writes "[Request interrupted by user]" and a result first
        ("claude-429-timed-out", "API request failed: rate_limit (HTTP 429), retry 1 of 1", None, 1),
        ("codex-429-stopped", "Reconnecting... 2/5 (exceeded retry limit, last status: 429 Too Many Requests)",
         None, 2),
        ("gemini-429-stopped", "Attempt 2 failed: You exceeded your current quota, please check your plan and billing details. "
         "Please retry in 5s. Suggested retry after 5s.. Retrying after 11613ms...", 5.0, 2),
    ],
)  # fmt: skip
def test_a_run_stopped_while_it_waited_to_retry_is_a_rate_limit(
    name: str, message: str, retry_after: float | None, retries: int
) -> None:
    found = limit_of(name.split("-")[0], name)
    assert found == RateLimit(RATE_LIMITED, message, retry_after, 429 if name[0] == "c" else None, retries)


GEMINI_503 = '{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}'


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("codex-503-gave-up", RateLimit(OVERLOADED, "Selected model is at capacity. Please try a different model.")),
        ("gemini-503-gave-up", RateLimit(OVERLOADED, "[API Error: The model is overloaded. Please try again later.]",
                                         None, None, 2)),
        ("gemini-503-stopped", RateLimit(OVERLOADED, "Attempt 2 failed with status 503. Retrying with backoff... "
                                         f"_ApiError: {GEMINI_503}", None, 503, 2)),
        ("opencode-503-gave-up", RateLimit(OVERLOADED, "The server is overloaded or not ready yet.", 1.0, 503)),
        ("aider-503-stopped", RateLimit(OVERLOADED, "litellm.ServiceUnavailableError: ServiceUnavailableError: "
                                        "OpenAIException - The server is overloaded or not ready yet. The API "
                                        "provider's servers are down or overloaded.", None, None, 4)),
    ],
)  # fmt: skip
def test_an_overload_the_cli_gave_up_on_or_was_stopped_in_is_an_overload(
    name: str, expected: RateLimit
) -> None:
    assert limit_of(name.split("-")[0], name) == expected


def test_an_overload_claude_could_not_parse_mid_stream_is_not_seen() -> None:
    # A 200 stream with `event: error` overloaded_error after message_start: Claude retries it
    # silently, then says "API Error: API returned an empty or malformed response (HTTP 200)".
    assert limit_of("claude", "claude-overloaded-midstream") is None
    assert limit_of("codex", "codex-503-retried") is None


def test_what_opencode_and_aider_print_nothing_about_is_not_seen() -> None:
    # aider stopped inside the OpenAI client's own silent retries; OpenCode prints nothing while
    # it retries (a run stopped then has an empty log).
    assert limit_of("aider", "aider-429-stopped-silent") is None
    assert get_profile("opencode", Config()).rate_limit("") is None


@pytest.mark.parametrize(
    ("cli", "output"),
    [
        # Other errors of the CLI itself: the failure path, not a rate limit.
        ("claude", '{"type":"result","subtype":"success","is_error":true,"api_error_status":401,'
                   '"result":"Invalid API key · Fix external API key"}'),
        ("claude", '{"type":"system","subtype":"api_retry","attempt":8,"max_retries":10,"error_status":401,'
                   '"error":"authentication_failed"}'),
        ("claude", '{"type":"result","subtype":"error_max_turns","is_error":true}'),
        # Retried, then the run went on (a tool call after the retry): not how it ended.
        ("claude", '{"type":"system","subtype":"api_retry","attempt":1,"error_status":429,"error":"rate_limit"}\n'
                   '{"type":"assistant","message":{"content":[]}}'),
        ("codex", '{"type":"error","message":"Reconnecting... 1/5 (exceeded retry limit, last status: 429 Too '
                  'Many Requests)"}\n{"type":"turn.completed"}'),
        ("codex", '{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: bad key"}}'),
        ("gemini", '{"type":"result","status":"error","error":{"message":"[API Error: invalid x-api-key]"}}'),
        ("gemini", "Attempt 1 failed: You exceeded your current quota. Please retry in 1s.\nSuggested retry after "
                   '1s.. Retrying after 5200ms...\n{"type":"message","role":"assistant","content":"Done."}'),
        # A daily quota is terminal: waiting does not clear it.
        ("gemini", 'TerminalQuotaError: You have exhausted your daily quota on this model.\n{"type":"result",'
                   '"status":"error","error":{"message":"[API Error: You have exhausted your daily quota on this '
                   'model.]"}}'),
        ("opencode", '{"type":"error","error":{"name":"APIError","data":{"message":"invalid x-api-key",'
                     '"statusCode":401}}}'),
        ("opencode", '{"type":"error","error":{"name":"APIError","data":{"message":"You exceeded your current '
                     'quota","statusCode":429,"responseBody":"{\\"error\\":{\\"code\\":\\"insufficient_quota\\"}}"}}}'),
        ("aider", "litellm.AuthenticationError: AuthenticationError: OpenAIException - invalid x-api-key\n"),
        ("aider", (FIXTURES / "aider-unreachable-stopped.log").read_text()),
        ("aider", AIDER_429.format("1s") + "\nRetrying in 0.2 seconds...\nDone.\n\nTokens: 1.2k sent, 80 received.\n"),
        ("scripted", "HTTP 429 Too Many Requests"),
    ],
)  # fmt: skip
def test_other_endings_are_no_rate_limit(cli: str, output: str) -> None:
    assert get_profile(cli, Config()).rate_limit(output) is None


def test_overload_wording_of_each_provider() -> None:
    codex = '{"type":"turn.failed","error":{"message":"We are currently experiencing high demand."}}'
    assert get_profile("codex", Config()).rate_limit(codex) == RateLimit(
        OVERLOADED, "We are currently experiencing high demand."
    )
    opencode = (
        '{"type":"error","error":{"name":"APIError","data":{"message":"Overloaded","statusCode":529,'
        '"responseHeaders":{"retry-after-ms":"2500"}}}}'
    )
    assert get_profile("opencode", Config()).rate_limit(opencode) == RateLimit(
        OVERLOADED, "Overloaded", 2.5, 529
    )
    aider = (
        "litellm.InternalServerError: AnthropicException - Overloaded\n"
        "The API provider's servers are down or overloaded.\nRetrying in 0.2 seconds...\n"
    )
    found = get_profile("aider", Config()).rate_limit(aider)
    assert found is not None and found.kind == OVERLOADED and found.retries == 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("Please try again in 1.5s.", 1.5), ("try again in 250ms", 0.25), ("Suggested retry after 20s.", 20.0),
     ("retry-after: 7", 7.0), ("nothing said", None), ("Please try again in 6m0s.", 360.0),
     ("Please try again in 1h2m3.5s.", 3723.5), ("try again in 3 hours", 10800.0),
     ("Please retry in 2 minutes.", 120.0), ("retry after 90 seconds", 90.0),
     ("Retrying in 0.2 seconds...", None)],
)  # fmt: skip
def test_delay_in_reads_the_providers_words(text: str, seconds: float | None) -> None:
    assert rl.delay_in(text) == seconds


def test_header_delay_prefers_milliseconds_and_skips_dates() -> None:
    assert rl.header_delay({"Retry-After": "3", "retry-after-ms": "1200"}) == 1.2
    assert rl.header_delay({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert rl.header_delay(None) is None
