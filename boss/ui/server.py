"""`boss ui`: serve the dashboard on a loopback address of its own, print its URL with a fresh
single-use access token, open the browser, and on Ctrl-C stop what it started (the plan's
files hold everything else)."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from boss.core.errors import InputError
from boss.ui.app import build
from boss.ui.site import Site


def own_host() -> str:
    """A loopback address no other local server uses: on Linux, which routes all of 127/8 to
    the loopback, a random 127.x.y.z (so the session cookie, which ignores ports, reaches no
    other server on 127.0.0.1); elsewhere 127.0.0.1."""
    if not sys.platform.startswith("linux"):
        return "127.0.0.1"
    while (host := f"127.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}") in (
        "127.0.0.1",
        "127.0.1.1",  # Debian's name for this machine
    ):
        pass
    return host


def loopback(host: str) -> str:
    """host as given to --host, when it is a loopback address; InputError otherwise."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        msg = (
            f"--host {host}: not a loopback address; boss ui listens only on this machine "
            "(127.0.0.1, 127.x.y.z or ::1)"
        )
        raise InputError(msg)
    return str(address)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host (port 0: a free one); InputError when port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        msg = f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); pick another or leave it out"
        raise InputError(msg) from e
    sock.listen(128)
    return sock


def listen(host: str | None, port: int, say: Callable[[str], None]) -> socket.socket:
    """The socket on --host, or on an address of our own (127.0.0.1 where the system refuses it)."""
    if host is not None:
        return bind(loopback(host), port)
    chosen = own_host()
    try:
        return bind(chosen, port)
    except InputError:
        if chosen == "127.0.0.1":
            raise
    say(f"boss ui: cannot listen on {chosen}; on 127.0.0.1 instead (its cookie reaches other servers there)")
    return bind("127.0.0.1", port)


def serve(
    repo: Path, plan: str, port: int, *, browser: bool, say: Callable[[str], None], host: str | None = None
) -> None:
    """Run until interrupted."""
    sock = listen(host, port, say)
    bound, bound_port = sock.getsockname()[:2]
    site = Site(repo, plan, secrets.token_urlsafe(24), bound_port, host=bound)
    url = f"http://{site.authority}/?token={site.token}"
    config = uvicorn.Config(build(site), log_level="warning", timeout_graceful_shutdown=2, lifespan="off")
    server = uvicorn.Server(config)
    say(f"boss ui for plan {plan}: {url}")
    say("This link works once, in one browser (run boss ui again for a new one); Ctrl-C stops the UI.")

    original = server.handle_exit

    def stop(sig: int, frame: FrameType | None) -> None:
        if site.stopping is not None and site.loop is not None:
            site.loop.call_soon_threadsafe(site.stopping.set)
        original(sig, frame)

    server.handle_exit = stop  # type: ignore[method-assign]

    async def main() -> None:
        site.stopping, site.loop = asyncio.Event(), asyncio.get_running_loop()
        if browser:  # the token is on the browser's command line: it is used at once, and only once
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        await server.serve(sockets=[sock])

    try:
        asyncio.run(main())
    finally:
        site.jobs.stop_all()
        sock.close()
