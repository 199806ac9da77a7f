"""The web application: pages, their event stream, and the actions, behind a session.

Every request must name exactly our address and port as its Host (a DNS-rebinding page
cannot). The printed URL's token works once: the first request carrying it gets a session (a
random id in an HttpOnly SameSite=Strict cookie) and a 303 to the same URL without the token;
the token is dead from then on (browsers keep URLs in their history). Pages and the event
stream need the session. An action is a POST with the session and its form token in the form
(the cookie alone never acts), whose Origin and Sec-Fetch-Site, when the browser sends them,
say it comes from our own pages. No page may be framed; each page's script and style carry a
nonce, and nothing else runs.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boss.core.errors import BossError, InputError
from boss.ui import actions, graph, views, watch
from boss.ui.site import Site

REFUSED = "boss ui: refused: open the URL `boss ui` printed (it carries the access token)\n"
USED = "boss ui: refused: this link was used already (it works once); run boss ui again for a new one\n"
CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _ours(site: Site, request: Request) -> bool:
    return request.headers.get("host", "") == site.authority


def session(site: Site, request: Request) -> str | None:
    """The form token of the request's session (its cookie), if it has one."""
    given = request.cookies.get(site.cookie, "")
    for sid, form_token in list(site.sessions.items()):
        if _same(given, sid):
            return form_token
    return None


def allowed_get(site: Site, request: Request) -> bool:
    return _ours(site, request) and "token" not in request.query_params and session(site, request) is not None


def exchange(site: Site, request: Request) -> Response:
    """A request with ?token=: the launch token, the first time, becomes a session; the 303 takes
    the token out of the address bar (and of the history's last entry)."""
    given = request.query_params.get("token", "")
    rest = request.url.remove_query_params("token")
    clean = RedirectResponse(rest.path + (f"?{rest.query}" if rest.query else ""), status_code=303)
    if not _same(given, site.token):
        return PlainTextResponse(REFUSED, status_code=403)
    if site.used:  # again, in the browser it made a session for: the session stands
        return clean if session(site, request) is not None else PlainTextResponse(USED, status_code=403)
    site.used = True
    sid = secrets.token_urlsafe(32)
    site.sessions[sid] = secrets.token_urlsafe(32)
    clean.set_cookie(site.cookie, sid, httponly=True, samesite="strict", path="/")
    return clean


def allowed_post(site: Site, request: Request, form_token: str) -> bool:
    if not _ours(site, request):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin != f"http://{site.authority}":
        return False
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    expected = session(site, request)
    return expected is not None and _same(form_token, expected)


def secured(app: ASGIApp) -> ASGIApp:
    """app, with every response forbidding framing and allowing only its own nonce'd script."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        nonce = scope["boss.nonce"] = secrets.token_urlsafe(18)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP.format(nonce=nonce)
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"  # no-referrer would make Origin null
            await send(message)

        await app(scope, receive, sending)

    return wrapped


ENV = Environment(loader=PackageLoader("boss.ui", "templates"), autoescape=select_autoescape(default=True))
ENV.globals.update(spend=views.spend, event_text=views.event_text, elapsed=views.elapsed)


def page(site: Site, request: Request, name: str, title: str, key: str, **ctx: Any) -> Response:
    """A whole page, or with ?partial=1 the live part alone (what the event stream refreshes)."""
    back = request.url.path
    form_token = session(site, request) or ""
    live = Markup(ENV.get_template(name).render(token=form_token, back=back, jobs=site.jobs.all, **ctx))  # noqa: S704
    if request.query_params.get("partial"):
        return HTMLResponse(live, headers={"Cache-Control": "no-store"})
    said = request.query_params.get("said", "")
    html = ENV.get_template("base.html").render(
        plan=site.plan, title=title, page=key, live=live, said=said, said_error=said.startswith("Error"),
        nonce=request.scope.get("boss.nonce", ""),
    )  # fmt: skip
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def plan_context(site: Site) -> dict[str, Any]:
    """What the plan page shows (scripts/bench_ui.py times this with the rendering)."""
    paths, m, config = site.open()
    v = views.plan_view(paths, m, config)
    return {"v": v, "graph": graph.svg(m, v.rows, v.layers), "approvals": v.approvals}


def build(site: Site) -> ASGIApp:
    """The application for site."""

    def guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if _ours(site, request) and "token" in request.query_params:
                return exchange(site, request)
            if not allowed_get(site, request):
                return PlainTextResponse(REFUSED, status_code=403)
            try:
                return await run_in_threadpool(handler, request)
            except BossError as e:
                return PlainTextResponse(
                    f"Error: {e}\n", status_code=404 if isinstance(e, InputError) else 500
                )
            except OSError as e:  # a file gone or unreadable meanwhile: one line, not a bare 500
                return PlainTextResponse(f"Error: cannot read {e.filename}: {e.strerror}\n", status_code=500)

        return endpoint

    def plan_page(request: Request) -> Response:
        return page(site, request, "plan.html", "plan", "plan", **plan_context(site))

    def worker_page(request: Request) -> Response:
        paths, m, config = site.open()
        v = views.worker_view(paths, m, config, request.path_params["wid"])
        now = datetime.now(UTC) if v.row and v.row.state == "RUNNING" else None
        return page(site, request, "worker.html", v.id, f"w:{v.id}", v=v, approvals=views.pending(paths),
                    timeline=graph.timeline(v.iterations, now))  # fmt: skip

    def ceremony_page(request: Request) -> Response:
        paths, m, config = site.open()
        v = views.ceremony_view(paths, m, config)
        return page(site, request, "ceremony.html", "ceremony", "ceremony", v=v, approvals=v.approvals)

    def report_page(request: Request) -> Response:
        paths, _, _ = site.open()
        n = int(request.path_params["n"])
        text = views.report_text(paths, n)
        return page(site, request, "report.html", f"report {n}", f"ceremony:{n}", number=n, text=text,
                    approvals=views.pending(paths))  # fmt: skip

    def job_page(request: Request) -> Response:
        paths, _, _ = site.open()
        job = site.jobs.get(int(request.path_params["n"]))
        if job is None:
            return PlainTextResponse("no such job\n", status_code=404)
        return page(site, request, "job.html", job.title, f"job:{job.number}", job=job,
                    approvals=views.pending(paths))  # fmt: skip

    async def events(request: Request) -> Response:
        if not allowed_get(site, request):
            return PlainTextResponse(REFUSED, status_code=403)
        key = request.query_params.get("page", "plan")
        focus = key[2:] if key.startswith("w:") else ""
        if focus:  # a worker's page: its attempts are watched too, so it must be one of the plan's
            try:
                _, m, _ = await run_in_threadpool(site.open)
            except BossError as e:
                return PlainTextResponse(f"Error: {e}\n", status_code=500)
            if focus not in {w.id for w in m.workers}:
                return PlainTextResponse(f"no worker {focus!r} in plan {site.plan}\n", status_code=404)
        return StreamingResponse(
            _stream(site, request, focus), media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    async def act(request: Request) -> Response:
        fields = await _form(request)
        if not allowed_post(site, request, fields.get("token", "")):
            return PlainTextResponse(REFUSED, status_code=403)
        name = request.path_params["name"]
        try:
            said, where = await run_in_threadpool(actions.run, site, name, fields)
        except BossError as e:
            said, where = f"Error: {e}", fields.get("back", "/")
        if not where.startswith("/") or where.startswith("//"):
            where = "/"
        return RedirectResponse(f"{where}?said={quote(said)}", status_code=303)

    routes = [
        Route("/", guarded(plan_page)),
        Route("/w/{wid}", guarded(worker_page)),
        Route("/ceremony", guarded(ceremony_page)),
        Route("/ceremony/{n:int}", guarded(report_page)),
        Route("/job/{n:int}", guarded(job_page)),
        Route("/events", events),
        Route("/act/{name}", act, methods=["POST"]),
    ]
    return secured(Starlette(routes=routes))


MAX_FORM = 64 * 1024


async def _form(request: Request) -> dict[str, str]:
    """An action's form (application/x-www-form-urlencoded, as our pages post it); the last
    value of each field. Anything else, or more than MAX_FORM bytes, is an empty form."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _look(site: Site, focus: str) -> object:
    """What the event stream compares (file work: run in a thread, off the event loop)."""
    try:
        paths, m, _ = site.open()
        return (watch.fingerprint(paths, [w.id for w in m.workers], focus), site.jobs.version())
    except BossError as e:
        return str(e)


async def _stream(site: Site, request: Request, focus: str) -> AsyncIterator[str]:
    """A `change` event whenever the plan's files (or a job's output) change; polled cheaply."""
    last: object = None
    beat = time.monotonic()
    yield "retry: 1000\n\n"
    while site.stopping is None or not site.stopping.is_set():
        now = await run_in_threadpool(_look, site, focus)
        if last is not None and now != last:
            yield "event: change\ndata: {}\n\n"
        elif time.monotonic() - beat > 15:
            yield ": still here\n\n"
            beat = time.monotonic()
        last = now
        if await request.is_disconnected():
            return
        await asyncio.sleep(watch.POLL_SECONDS)
