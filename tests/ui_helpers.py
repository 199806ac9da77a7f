"""For the `boss ui` tests: the real `boss ui` as a child process, and a headless Chromium
(Debian's, driven by Playwright; never a downloaded browser)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("BOSS_UI_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
REQUIRED = os.environ.get("BOSS_UI_REQUIRED") == "1"


def _missing(what: str) -> None:
    """Skip, naming what is missing; under BOSS_UI_REQUIRED=1 (CI) fail instead."""
    if REQUIRED:
        pytest.fail(f"BOSS_UI_REQUIRED=1 but {what}")
    pytest.skip(what)


def need_ui() -> None:
    """The `ui` extra (Starlette, uvicorn) is installed."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        _missing(f"{e.name} is not installed (pip install '.[ui]')")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright's sync API)."""
    need_ui()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install '.[test]')")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _missing(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class UI:
    """A running `boss ui --no-browser` on a free port, in repo."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "boss", "ui", "--no-browser", *args], cwd=repo, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if "http://" not in first:
            self.stop()
            raise AssertionError(f"boss ui printed {first!r}; stderr: {self.proc.stderr.read()}")
        self.url = first.split(": ", 1)[1].strip()  # http://127.x.y.z:PORT/?token=...
        self.base = self.url.split("/?", 1)[0]
        self.token = self.url.split("token=", 1)[1]
        self.host, port = self.base.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.cookie = ""  # "name=session id", once login() exchanged the token
        self.form_token = ""  # what the session's forms carry

    def login(self) -> dict[str, str]:
        """The headers of a session (the launch token exchanged, once, as a browser does):
        its Cookie and our Origin; the forms' token is in self.form_token."""
        if not self.cookie:
            code, headers, _ = request(self.url)
            assert code == 303, code
            self.cookie = headers["set-cookie"].split(";", 1)[0]
            code, body = http(self.base + "/", headers={"Cookie": self.cookie})
            found = re.search(r'name="token" value="([^"]+)"', body)
            assert code == 200 and found, (code, body[:300])
            self.form_token = found.group(1)
        return {"Cookie": self.cookie, "Origin": self.base}

    def stop(self) -> str:
        """Ctrl-C, as a person stops it; its stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


@contextmanager
def running_ui(repo: Path, *args: str) -> Iterator[UI]:
    need_ui()
    ui = UI(repo, *args)
    try:
        yield ui
    finally:
        ui.stop()


def http(
    url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """(status, body) of a GET, or of a form POST when data is given; redirects not followed."""
    code, _, body = request(url, data, headers)
    return code, body


def request(
    url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """(status, headers (lower-case names), body), as http()."""
    import http.client
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    body = urlencode(data) if data is not None else None
    sent = dict(headers or {})
    if body is not None:
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST" if data is not None else "GET", path, body=body, headers=sent)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def wait_for(check: Any, timeout: float = 60.0, what: str = "") -> Any:
    """check() once it is truthy; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def shot(page: Any, name: str) -> None:
    """A screenshot for the README, docs/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
