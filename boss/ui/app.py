"""The web application: pages, their event stream, and the actions, behind the access token.

Every request must come to 127.0.0.1 or localhost on our port (a DNS-rebinding page cannot),
with the token (in the URL once, then in a same-site cookie). An action is a POST that carries
the token in its form (or X-Boss-Token), never the cookie alone, and whose Origin and
Sec-Fetch-Site, when the browser sends them, say it comes from our own pages.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from boss.core.errors import BossError, InputError
from boss.ui import actions, graph, views, watch
from boss.ui.site import Site

REFUSED = "boss ui: refused: open the URL `boss ui` printed (it carries the access token)\n"


def _hosts(site: Site) -> set[str]:
    return {f"127.0.0.1:{site.port}", f"localhost:{site.port}"}


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def allowed_get(site: Site, request: Request) -> bool:
    if request.headers.get("host", "") not in _hosts(site):
        return False
    given = request.query_params.get("token") or request.cookies.get(site.cookie, "")
    return _same(given, site.token)


def allowed_post(site: Site, request: Request, form_token: str) -> bool:
    if request.headers.get("host", "") not in _hosts(site):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin not in {f"http://{h}" for h in _hosts(site)}:
        return False
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    return _same(form_token or request.headers.get("x-boss-token", ""), site.token)


ENV = Environment(loader=PackageLoader("boss.ui", "templates"), autoescape=select_autoescape(default=True))
ENV.globals.update(spend=views.spend, event_text=views.event_text, elapsed=views.elapsed)


def page(site: Site, request: Request, name: str, title: str, key: str, **ctx: Any) -> Response:
    """A whole page, or with ?partial=1 the live part alone (what the event stream refreshes)."""
    back = request.url.path
    live = Markup(ENV.get_template(name).render(token=site.token, back=back, jobs=site.jobs.all, **ctx))  # noqa: S704
    if request.query_params.get("partial"):
        return HTMLResponse(live, headers={"Cache-Control": "no-store"})
    said = request.query_params.get("said", "")
    html = ENV.get_template("base.html").render(
        plan=site.plan, title=title, page=key, live=live, said=said, said_error=said.startswith("Error")
    )
    response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
    if request.query_params.get("token"):
        response.set_cookie(site.cookie, site.token, httponly=True, samesite="strict", path="/")
    return response


def plan_context(site: Site) -> dict[str, Any]:
    """What the plan page shows (scripts/bench_ui.py times this with the rendering)."""
    paths, m, config = site.open()
    v = views.plan_view(paths, m, config)
    return {"v": v, "graph": graph.svg(m, v.rows, v.layers), "approvals": v.approvals}


def build(site: Site) -> Starlette:
    """The application for site."""

    def guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not allowed_get(site, request):
                return PlainTextResponse(REFUSED, status_code=403)
            try:
                return await run_in_threadpool(handler, request)
            except BossError as e:
                return PlainTextResponse(
                    f"Error: {e}\n", status_code=404 if isinstance(e, InputError) else 500
                )

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
    return Starlette(routes=routes)


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


async def _stream(site: Site, request: Request, focus: str) -> AsyncIterator[str]:
    """A `change` event whenever the plan's files (or a job's output) change; polled cheaply."""
    last: object = None
    beat = time.monotonic()
    yield "retry: 1000\n\n"
    while site.stopping is None or not site.stopping.is_set():
        try:
            paths, m, _ = site.open()
            now: object = (watch.fingerprint(paths, [w.id for w in m.workers], focus), site.jobs.version())
        except BossError as e:
            now = str(e)
        if last is not None and now != last:
            yield "event: change\ndata: {}\n\n"
        elif time.monotonic() - beat > 15:
            yield ": still here\n\n"
            beat = time.monotonic()
        last = now
        if await request.is_disconnected():
            return
        await asyncio.sleep(watch.POLL_SECONDS)
