"""What each provider answers when it rate-limits or is overloaded, for `ModelServer.refuse`.

The bodies and headers are those the providers document (and their SDKs parse): Anthropic's
429 `rate_limit_error` and 529 `overloaded_error`, OpenAI's 429 `rate_limit_exceeded`, Gemini's
429 `RESOURCE_EXHAUSTED` with a `RetryInfo` detail. `retry_after` is in seconds (None: no
header, as an overloaded Anthropic API or the Gemini API answers).
"""

from __future__ import annotations

from mock_server import Reply

ANTHROPIC_MESSAGE = (
    "This request would exceed the rate limit for your organization of 50 requests per minute. "
    "For details, refer to: https://docs.claude.com/en/api/rate-limits."
)
GEMINI_MESSAGE = "You exceeded your current quota, please check your plan and billing details."

# What the CLIs print when they give up on them (tests/contract/test_cli_rate_limits.py).
ANTHROPIC_429 = f"API Error: Request rejected (429) · {ANTHROPIC_MESSAGE}"
GEMINI_GAVE_UP = (
    f"[API Error: {GEMINI_MESSAGE} Please retry in 1s. Suggested retry after 1s.] Please wait and try again "
    "later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method"
)


def openai_message(wait: str, model: str = "gpt-5-codex") -> str:
    """OpenAI's words for a 429 of the requests-per-minute limit."""
    return (
        f"Rate limit reached for {model} in organization org-scratch on requests per min (RPM): "
        f"Limit 3, Used 3, Requested 1. Please try again in {wait}. Visit "
        "https://platform.openai.com/account/rate-limits to learn more."
    )


AIDER_429 = (
    f"litellm.RateLimitError: RateLimitError: OpenAIException - {openai_message('1s')} "
    "The API provider has rate limited you. Try again later or check your quotas."
)


def _headers(retry_after: float | None) -> dict[str, str]:
    return {} if retry_after is None else {"retry-after": f"{retry_after:g}"}


def anthropic_rate_limit(retry_after: float | None = 1) -> Reply:
    """Anthropic's 429: `{"type": "error", "error": {"type": "rate_limit_error", ...}}`."""
    error = {"type": "rate_limit_error", "message": ANTHROPIC_MESSAGE}
    headers = {**_headers(retry_after), "anthropic-ratelimit-requests-remaining": "0",
               "request-id": "req_ratelimited"}  # fmt: skip
    return Reply(429, json={"type": "error", "error": error}, headers=headers)


def anthropic_overloaded(retry_after: float | None = None) -> Reply:
    """Anthropic's 529: `{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}`."""
    error = {"type": "overloaded_error", "message": "Overloaded"}
    return Reply(529, json={"type": "error", "error": error}, headers=_headers(retry_after))


def openai_rate_limit(retry_after: float | None = 1, model: str = "gpt-5-codex") -> Reply:
    """OpenAI's 429: `{"error": {"code": "rate_limit_exceeded", "type": "requests", ...}}`."""
    wait = f"{retry_after:g}s" if retry_after is not None else "20s"
    error = {
        "message": openai_message(wait, model),
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    headers = {**_headers(retry_after), "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-reset-requests": wait}  # fmt: skip
    return Reply(429, json={"error": error}, headers=headers)


def gemini_exhausted(retry_after: float | None = 1) -> Reply:
    """Gemini's 429 RESOURCE_EXHAUSTED, the delay in a `google.rpc.RetryInfo` detail (no header)."""
    delay = f"{retry_after:g}s" if retry_after is not None else None
    message = GEMINI_MESSAGE + (f" Please retry in {delay}." if delay else "")
    details: list[dict[str, object]] = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                         "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]},
    ]  # fmt: skip
    if delay:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    error = {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details}
    return Reply(429, json={"error": error})


def anthropic_overloaded_midstream() -> Reply:
    """A 200 stream that starts a message, then says `event: error` overloaded_error (as the
    Anthropic API does when it sheds load after the response began)."""
    message = {"id": "msg_overloaded", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 10, "output_tokens": 1}}  # fmt: skip
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    return Reply(sse=[("message_start", {"type": "message_start", "message": message}), ("error", error)])


def openai_overloaded(retry_after: float | None = None) -> Reply:
    """OpenAI's 503 when the engine sheds load (`server_is_overloaded`)."""
    error = {"message": "The server is overloaded or not ready yet.", "type": "server_error", "param": None,
             "code": "server_is_overloaded"}  # fmt: skip
    return Reply(503, json={"error": error}, headers=_headers(retry_after))


def gemini_overloaded() -> Reply:
    """Gemini's 503 UNAVAILABLE: "The model is overloaded. Please try again later."."""
    error = {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }
    return Reply(503, json={"error": error})
