"""`boss ui`: serve the dashboard on 127.0.0.1, print its URL with a fresh access token, open
the browser, and on Ctrl-C stop what it started (the plan's files hold everything else)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from boss.core.errors import InputError
from boss.ui.app import build
from boss.ui.site import Site


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: a free one); InputError when port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        msg = f"--port {port}: cannot listen on 127.0.0.1:{port} ({e.strerror}); pick another or leave it out"
        raise InputError(msg) from e
    sock.listen(128)
    return sock


def serve(repo: Path, plan: str, port: int, *, browser: bool, say: Callable[[str], None]) -> None:
    """Run until interrupted."""
    sock = bind(port)
    site = Site(repo, plan, secrets.token_urlsafe(24), sock.getsockname()[1])
    url = f"http://127.0.0.1:{site.port}/?token={site.token}"
    config = uvicorn.Config(build(site), log_level="warning", timeout_graceful_shutdown=2, lifespan="off")
    server = uvicorn.Server(config)
    say(f"boss ui for plan {plan}: {url}")
    say("Anyone with this URL can act on the plan; Ctrl-C stops the UI (the plan's files keep everything).")

    original = server.handle_exit

    def stop(sig: int, frame: FrameType | None) -> None:
        if site.stopping is not None and site.loop is not None:
            site.loop.call_soon_threadsafe(site.stopping.set)
        original(sig, frame)

    server.handle_exit = stop  # type: ignore[method-assign]

    async def main() -> None:
        site.stopping, site.loop = asyncio.Event(), asyncio.get_running_loop()
        if browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        await server.serve(sockets=[sock])

    try:
        asyncio.run(main())
    finally:
        site.jobs.stop_all()
        sock.close()
