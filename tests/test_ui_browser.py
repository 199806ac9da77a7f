"""`boss ui` in a real browser (headless Debian chromium through Playwright) against real plans
of scripted agents: live updates, an approval decided in the page, a quarantined worker
salvaged from the page and merged, and a cross-site form refused. Each page's screenshot goes
to docs/screenshots/ for the README. Skipped without chromium or playwright, except under
BOSS_UI_REQUIRED=1 (CI), where that fails."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from conftest import git, make_repo, worker_cmd
from ui_helpers import chromium, running_ui, shot, wait_for
from worker_helpers import make_plan, worker

from boss.core import approvals as ap
from boss.core import statelog
from boss.core import status as st


def state_of(page, wid: str) -> str:
    return page.locator(f'#workers tr[data-worker="{wid}"] .state').first.inner_text()


def agent_log(paths) -> list[str]:
    [log] = paths.worker_dir("W1").rglob("agent.log")
    return log.read_text().splitlines()


def job_result(page) -> str:
    """The job page's state once its command has ended ('exit 0', ...)."""
    return wait_for(
        lambda: (t := page.locator("#job-state").inner_text()).startswith("exit") and t,
        timeout=180, what="the job to end",
    )  # fmt: skip


def test_the_page_shows_the_workers_advancing_without_a_reload(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    paths, _ = make_plan(repo, [
        worker("W1", steps=[{"sleep": 2, "write": {"src/one.txt": "1"}}], test="test -f src/one.txt"),
        worker("W2", depends_on=["W1"], steps=[{"sleep": 2, "write": {"src/two.txt": "2"}}],
               test="test -f src/two.txt"),
    ])  # fmt: skip
    with chromium() as browser, running_ui(repo) as ui:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("dialog", lambda d: d.accept())  # "Run this worker again now?": yes
        page.goto(ui.url)
        assert state_of(page, "W1") == state_of(page, "W2") == "PENDING"
        page.evaluate("window.stayed = 1")  # gone if the page reloads: updates must come live
        run = subprocess.Popen(["bash", str(paths.run_script)], cwd=repo, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
        seen: dict[str, list[str]] = {"W1": [], "W2": []}
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and seen["W2"][-1:] != ["SUCCESS"]:
                for wid, states in seen.items():
                    now = state_of(page, wid)
                    if states[-1:] != [now]:
                        states.append(now)
                        if (wid, now) == ("W2", "RUNNING"):
                            shot(page, "plan-running")
                time.sleep(0.1)
        finally:
            assert run.wait(120) == 0
        assert seen["W1"] == ["PENDING", "RUNNING", "SUCCESS"], seen
        assert seen["W2"] == ["PENDING", "RUNNING", "SUCCESS"], seen
        assert page.evaluate("window.stayed") == 1
        assert "2 SUCCESS" in page.locator("h1").inner_text()
        page.goto(f"{ui.base}/w/W1")
        assert "W1.s1.i1: pass" in page.locator(".timeline").inner_text()
        assert page.locator('svg.timeline-svg g[data-iteration="W1.s1.i1"]').count() == 1
        assert "src/one.txt" in page.locator("#diff").inner_text()
        shot(page, "worker")


def test_an_approval_in_the_page_lets_the_retry_run_that_command_once(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"build/out.txt": "old build\n", "README.md": "readme text\n"})
    paths, _ = make_plan(repo, [worker(
        "W1", scope=["^build/"], test="test ! -e build/out.txt",
        steps=[{"shell": ["cat README.md", "rm -rf build && echo removed-once"]}],
        max_iterations=1, max_strategies=1,
    )])  # fmt: skip
    with chromium() as browser, running_ui(repo) as ui:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(ui.url)
        page.evaluate("window.stayed = 1")
        assert page.locator("[data-request]").count() == 0
        worker_cmd("run", "p", "W1", cwd=repo, check=1, env={"BOSS_APPROVAL_WAIT": ""})
        before = agent_log(paths)
        request = page.locator('[data-request="R1"]')
        request.wait_for(timeout=5000)  # it appears on the open page
        assert page.evaluate("window.stayed") == 1
        text = request.inner_text()
        assert "TIER 3" in text and "recursive-delete" in text, text
        assert request.locator("code.command").inner_text() == "rm -rf build && echo removed-once"
        shot(page, "approval")
        reason = request.locator("input[name=reason]")
        reason.fill("the build folder is ours to remove")
        # Typed, then looked elsewhere, and the page refreshes live: what you typed stays.
        page.evaluate("document.activeElement.blur()")
        stamp = page.evaluate("document.body.dataset.updated || ''")
        statelog.append(paths.log, statelog.Event(st.now_iso(), "RUNNING", "W1", "note", "a change", ""))
        wait_for(lambda: page.evaluate("document.body.dataset.updated || ''") != stamp, 20, "a live refresh")
        assert reason.input_value() == "the build folder is ours to remove"
        # A change while you type waits; a slow click on Approve (focus moves to the button on
        # press) is not lost to that refresh.
        reason.click()
        statelog.append(paths.log, statelog.Event(st.now_iso(), "RUNNING", "W1", "note", "another", ""))
        time.sleep(1.0)  # the change reaches the page, which waits while you type
        request.locator("button", has_text="Approve R1").click(delay=300)
        assert "R1 approved: rm -rf build && echo removed-once" in page.locator("#said").inner_text()
        req = ap.load(paths.approvals_dir, "R1")
        assert (req.status, req.decision_reason) == (ap.APPROVED, "the build folder is ours to remove")
        logged = [e for e in statelog.read(paths.log) if e.action == "approve"]
        assert [e.result for e in logged] == [
            "approved R1: rm -rf build && echo removed-once (the build folder is ours to remove)"
        ]
        assert page.locator("[data-request]").count() == 0
        page.once("dialog", lambda d: d.accept())  # "Run this worker again now?": yes
        page.locator('#workers tr[data-worker="W1"] button', has_text="Retry").click()
        page.wait_for_url("**/job/1**")
        assert job_result(page) == "exit 0", page.locator("#job-output").inner_text()
        assert "W1: SUCCESS" in page.locator("#job-output").inner_text()
        shot(page, "job")
        page.goto(f"{ui.base}/w/W1")
        row = page.locator("#requests tr", has_text="R1").inner_text()
        assert "used (the build folder is ours to remove)" in row, row
        page.once("dialog", lambda d: d.dismiss())  # "Drop this worker for good?": no
        page.locator("input[name=reason][placeholder^='why drop']").fill("changed my mind")
        page.locator("button", has_text="Drop").click()
        time.sleep(0.5)
        assert not (paths.root / "dropped").exists() and page.locator("#said").count() == 0
    assert st.read(paths.status("W1")).state == "SUCCESS"
    assert ap.load(paths.approvals_dir, "R1").status == ap.USED
    assert before.count("removed-once") == 0
    assert any(line.startswith("scripted agent: blocked: BLOCKED (TIER 3)") for line in before)
    assert agent_log(paths).count("removed-once") == 1  # the retry ran it, once


def test_a_quarantined_worker_is_salvaged_from_the_page_and_then_merges(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "# sample\n"})
    paths, _ = make_plan(repo, [
        worker("W1"),
        worker("W2", steps=[{"write": {"src/two.txt": "2\n", "README.md": "# rewritten\n"}}],
               test="test -f src/two.txt"),
    ])  # fmt: skip
    subprocess.run(["bash", str(paths.run_script)], cwd=repo, capture_output=True, timeout=300)
    assert [st.read(paths.status(w)).state for w in ("W1", "W2")] == ["SUCCESS", "SCOPE_VIOLATION"]
    with chromium() as browser, running_ui(repo) as ui:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("dialog", lambda d: d.accept())  # "Run this worker again now?": yes
        page.goto(ui.url)
        shot(page, "plan")
        page.click("#merge")
        page.wait_for_url("**/job/1**")
        job_result(page)
        page.goto(f"{ui.base}/w/W2")
        review = page.locator("#review")
        assert "README.md" in page.locator("#diff .out").first.inner_text()
        shot(page, "review")
        review.locator("#salvage").click()
        said = page.locator("#said").inner_text()
        assert "W2: salvaged as" in said and "(dropped: README.md)" in said, said
        page.goto(ui.url)
        page.click("#merge")
        page.wait_for_url("**/job/2**")
        assert job_result(page) == "exit 0", page.locator("#job-output").inner_text()
        page.goto(f"{ui.base}/ceremony")
        records = {
            line.split("\t")[0]: line.split("\t")
            for line in page.locator("#records").inner_text().splitlines()
        }
        assert records["W2"][2] == "MERGED" and records["W2"][4] == "salvage", records
        shot(page, "ceremony")
        page.click("text=Ceremony 1")
        assert "QUARANTINED" in page.locator("#report").inner_text()
        shot(page, "report")
    assert git(repo, "show", "main:src/two.txt") == "2"
    assert git(repo, "show", "main:README.md") == "# sample"


def test_a_cross_site_form_is_refused_even_with_the_token(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    paths, _ = make_plan(repo, [worker("W1")])
    req = ap.request(paths.approvals_dir, plan="p", worker="W1", command="rm -rf /tmp/x", reason="r",
                     rule="recursive-delete")  # fmt: skip
    with chromium() as browser, running_ui(repo) as ui:
        page = browser.new_page()
        page.goto(ui.url)  # the victim's browser has the UI's cookie
        hostile = (
            f'<form method="post" action="{ui.base}/act/approve"><input name="token" value="{ui.token}">'
            f'<input name="id" value="{req.id}"><button id="go">go</button></form>'
        )
        other = browser.new_page()
        other.set_content(hostile)  # another origin's page (about:blank)
        with other.expect_navigation():
            other.click("#go")
        assert "refused" in other.content()
        page.goto(f"{ui.base}/")  # no token in the URL: the cookie is enough to read
        assert page.locator('[data-request="R1"]').count() == 1
    assert ap.load(paths.approvals_dir, "R1").status == ap.PENDING


def test_after_boss_demo_the_page_tells_the_story_and_takes_the_waiting_approval(tmp_path: Path) -> None:
    """A new user's path: `boss demo`, then `boss ui` on the demo repository (the README's)."""
    from conftest import boss

    demo = tmp_path / "demo"
    out = boss("demo", str(demo), cwd=tmp_path).stdout
    assert "boss ui" in out and "rm -rf shop/__pycache__" in out
    with chromium() as browser, running_ui(demo) as ui:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(ui.url)
        for wid, state in (("W1", "SUCCESS"), ("W3", "FAILED"), ("W4", "SCOPE_VIOLATION"), ("W7", "SUCCESS")):
            assert state_of(page, wid) == state, wid
        table = page.locator("#workers").inner_text()
        for verdict in ("MERGED", "CONFLICT", "REVERTED"):
            assert verdict in table, verdict
        request = page.locator('[data-request="R1"]')
        assert request.locator("code.command").inner_text() == "rm -rf shop/__pycache__"
        shot(page, "demo")
        page.goto(f"{ui.base}/w/W3")
        assert "W3" in page.locator("#blocker").inner_text()  # its blocker report
        assert "rm -rf shop/__pycache__" in page.locator("#requests").inner_text()
        page.goto(f"{ui.base}/ceremony")
        records = page.locator("#records").inner_text()
        assert "W4" in records and "salvage" in records.lower(), records
        page.goto(ui.url)
        page.locator('[data-request="R1"]').locator("button", has_text="Deny R1").click()
        assert "R1 denied" in page.locator("#said").inner_text()
    assert "denied" in boss("approvals", "shop-features", "--all", cwd=demo).stdout


def test_no_other_local_server_gets_the_cookie_or_can_frame_the_page(tmp_path: Path) -> None:
    """An agent's dev server on 127.0.0.1, visited in the same browser, neither receives the
    session cookie (boss ui has an address of its own) nor can show the dashboard in a frame
    (to make you click in it); the page's own script still runs under its CSP."""
    import http.server
    import threading

    repo = make_repo(tmp_path / "repo")
    paths, _ = make_plan(repo, [worker("W1")])
    ap.request(paths.approvals_dir, plan="p", worker="W1", command="rm -rf /tmp/x", reason="r",
               rule="recursive-delete")  # fmt: skip
    seen: list[str] = []
    with chromium() as browser, running_ui(repo) as ui:

        class Spy(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("Cookie") or "")
                body = f'<iframe id="f" src="{ui.base}/" width="900" height="600"></iframe>'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        spy = http.server.HTTPServer(("127.0.0.1", 0), Spy)
        threading.Thread(target=spy.serve_forever, daemon=True).start()
        try:
            context = browser.new_context()
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if "Content Security" in m.text else None)
            page.goto(ui.url)
            assert page.url == f"{ui.base}/"  # the token is out of the address bar
            time.sleep(1.0)  # its event stream has had its first look at the files
            st.write(paths.status("W1"), st.Status(plan="p", id="W1", state=st.FAILED, reason="live"))
            wait_for(lambda: state_of(page, "W1") == "FAILED", timeout=10, what="the live update")
            assert problems == [], problems  # nothing the CSP refused
            other = context.new_page()
            failed: list[tuple[str, str | None]] = []
            other.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
            other.goto(f"http://127.0.0.1:{spy.server_address[1]}/")
            time.sleep(1.0)
            assert seen and not any("boss_ui" in c for c in seen), seen
            [frame] = [f for f in other.frames if f != other.main_frame]
            # The browser refuses to show it (not even our refusal: the cookie is not sent to a
            # frame in another site's page, and the page may not be framed at all): the frame's
            # request ends blocked by the response's headers. Chromium then puts its error page in
            # the frame, which a loaded machine's Chromium can take a minute or more to do.
            blocked = (f"{ui.base}/", "net::ERR_BLOCKED_BY_RESPONSE")
            wait_for(lambda: blocked in failed, timeout=20, what="the browser's refusal")
            assert frame.url in ("", "about:blank") or frame.url.startswith("chrome-error:"), frame.url
            assert "boss" not in frame.content(), frame.url
            assert page.locator('[data-request="R1"]').count() == 1  # while the page itself has it
        finally:
            spy.shutdown()
    assert ap.load(paths.approvals_dir, "R1").status == ap.PENDING
