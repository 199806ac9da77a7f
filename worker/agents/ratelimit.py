"""A run that ended because its provider rate-limited it or was overloaded, read from its output.

Every real CLI retries a 429 or 529 by itself before it gives up, and each says so in its own
words (measured in tests/contract/test_cli_rate_limits.py). A profile's `rate_limit(output)` reads
them: a `RateLimit` when the run ended on such an answer (the CLI gave up, or was stopped while
it was still waiting to retry), None when it did not (no limit met, or a retry that succeeded).
A quota that does not clear by waiting (Gemini's daily quota) is no rate limit: it is the
CLI's own failure (`failure()`).

The helpers here are shared by the profiles of `worker.agents.clis`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

RATE_LIMITED = "rate-limit"
OVERLOADED = "overload"

# Statuses a provider answers when it limits or sheds load: 429 Too Many Requests; Anthropic's
# 529 Overloaded; 503 Service Unavailable (Gemini's "model is overloaded", gateways).
RATE_STATUS = 429
OVERLOAD_STATUSES = (529, 503)
_RATE_WORDS = re.compile(
    r"rate[ _-]?limit|too many requests|resource[ _]exhausted|exceeded your current quota|\b429\b",
    re.IGNORECASE,
)
_OVERLOAD_WORDS = re.compile(
    r"overloaded|high demand|at capacity|\b529\b|service ?unavailable|\b503\b", re.IGNORECASE
)
# A 429 that waiting does not clear: OpenAI's billing quota, Gemini's daily quota.
_NOT_TRANSIENT = re.compile(r"insufficient_quota|daily quota|TerminalQuotaError", re.IGNORECASE)
# How providers and CLIs word the delay asked for: "retry-after: 5", "Please try again in 1.5s",
# "Please retry in 20s", "Suggested retry after 1s", "try again in 250ms", OpenAI's Go-style
# durations "try again in 6m0s" / "1h2m3.5s", and words: "try again in 3 hours", "in 2 minutes".
_DELAY = re.compile(
    r"(?:retry[- ]after|try again in|retry in)[:\s]+"
    r"((?:\d+(?:\.\d+)?\s*(?:ms|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)?\s*)+)(?![a-z])",
    re.IGNORECASE,
)
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)
_UNIT = {"ms": 0.001, "h": 3600, "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "m": 60, "min": 60,
         "mins": 60, "minute": 60, "minutes": 60}  # fmt: skip


@dataclass(frozen=True)
class RateLimit:
    """How a run ended on its provider's limit: its kind, the CLI's words, the delay asked for."""

    kind: str  # RATE_LIMITED or OVERLOADED
    message: str  # the CLI's own words, on one line
    retry_after: float | None = None  # seconds the provider asked to wait, when the output says
    status: int | None = None  # the HTTP status, when the output says
    retries: int = 0  # how many times the CLI itself retried before it gave up or was stopped


def describe(limit: RateLimit) -> str:
    """'429 rate limit', '529 overload', 'rate limit' (status unknown)."""
    what = "overload" if limit.kind == OVERLOADED else "rate limit"
    return f"{limit.status} {what}" if limit.status else what


def kind_of(status: int | None, text: str) -> str | None:
    """RATE_LIMITED or OVERLOADED from an HTTP status and/or the words of an error; None: neither
    (nor a quota that waiting does not clear)."""
    if _NOT_TRANSIENT.search(text):
        return None
    if status == RATE_STATUS:
        return RATE_LIMITED
    if status in OVERLOAD_STATUSES:
        return OVERLOADED
    if status is not None and 400 <= status < 600:
        return None  # another HTTP error (401, 400, 500): whatever its words say
    if _OVERLOAD_WORDS.search(text):
        return OVERLOADED
    if _RATE_WORDS.search(text):
        return RATE_LIMITED
    return None


def delay_in(text: str) -> float | None:
    """The delay (seconds) a message asks for ("Please try again in 1.5s", "retry-after: 5"); None."""
    found = _DELAY.findall(text)
    if not found:
        return None
    seconds = sum(float(value) * _UNIT.get(unit.lower(), 1) for value, unit in _PART.findall(found[-1]))
    return round(seconds, 3)


def header_delay(headers: object) -> float | None:
    """Seconds from response headers (`retry-after-ms`, or `retry-after` in seconds); None."""
    if not isinstance(headers, dict):
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return round(float(lowered[name]) / scale, 3)
        except (KeyError, TypeError, ValueError):
            continue  # absent, or an HTTP date
    return None


def one_line(text: str, limit: int = 400) -> str:
    """text on one line (whitespace runs squeezed), at most limit characters."""
    squeezed = " ".join(text.split())
    return squeezed if len(squeezed) <= limit else squeezed[: limit - 1] + "…"


def status_in(text: str) -> int | None:
    """An HTTP status a CLI's message names ("last status: 429", "(429)", "HTTP 529"); None."""
    found = re.search(r"(?:status:?|HTTP|\()\s*([45]\d\d)\b", text)
    return int(found.group(1)) if found else None


# Where each CLI is pointed when its environment says (a proxy, a gateway, a local model server).
BASE_URL_VARS = {
    "claude": ("ANTHROPIC_BASE_URL",),
    "codex": ("OPENAI_BASE_URL",),
    "gemini": ("GOOGLE_GEMINI_BASE_URL",),
    "aider": ("OPENAI_API_BASE", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"),
}


def provider_key(profile: str, env: Mapping[str, str]) -> str:
    """Whom an agent run talks to, for its concurrency cap (boss.core.limiter): the profile's
    name, and the host of the base URL its environment points it at when it does
    (`claude@127.0.0.1:8080`). Workers of one CLI on one endpoint share one cap."""
    for var in BASE_URL_VARS.get(profile, ()):
        url = env.get(var, "").strip()
        if url:
            host = urlsplit(url if "//" in url else f"//{url}").netloc.rpartition("@")[2]
            return f"{profile}@{host}" if host else profile
    return profile
