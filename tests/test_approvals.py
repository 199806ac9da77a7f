"""TIER 3 approval requests: the store, and `boss approvals | approve | deny`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import boss
from worker_helpers import make_plan, worker

from boss.core import approvals as ap
from boss.core import statelog
from boss.core.errors import InputError


def req(folder: Path, command: str, worker_id: str = "W1") -> ap.Request:
    return ap.request(folder, plan="p", worker=worker_id, command=command, reason="network egress",
                      rule="net-egress", cwd="/wt")  # fmt: skip


def test_requests_get_numbered_ids_and_are_not_duplicated(tmp_path: Path) -> None:
    folder = tmp_path / "approvals"
    first = req(folder, "curl https://x")
    assert (first.id, first.status, first.worker, first.tier) == ("R1", "pending", "W1", 3)
    assert first.created_at.endswith("Z")
    assert req(folder, "curl https://x").id == "R1"  # the same pending command: the same request
    assert req(folder, "curl https://x", "W2").id == "R2"
    assert req(folder, "wget https://y").id == "R3"
    stored = json.loads((folder / "R1.json").read_text())
    assert stored["command"] == "curl https://x"
    assert stored["rule"] == "net-egress"
    assert [r.id for r in ap.list_requests(folder)] == ["R1", "R2", "R3"]


def test_concurrent_guards_never_share_an_id(tmp_path: Path) -> None:
    folder = tmp_path / "approvals"
    threads = [threading.Thread(target=req, args=(folder, f"curl https://x/{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.number for r in ap.list_requests(folder)) == list(range(1, 9))


def test_an_approval_lets_exactly_that_command_through_once(tmp_path: Path) -> None:
    folder = tmp_path / "approvals"
    r = req(folder, "curl https://x")
    assert ap.consume(folder, "W1", "curl https://x") is None  # pending is not approved
    ap.decide(folder, r.id, approve=True, reason="needed for the fixture")
    assert ap.consume(folder, "W2", "curl https://x") is None  # another worker
    assert ap.consume(folder, "W1", "curl https://x ") is None  # another command
    used = ap.consume(folder, "W1", "curl https://x")
    assert used is not None
    assert (used.status, used.decision_reason) == ("used", "needed for the fixture")
    assert ap.consume(folder, "W1", "curl https://x") is None  # once
    with pytest.raises(InputError, match="already used"):
        ap.decide(folder, r.id, approve=False)


def test_denials_are_remembered(tmp_path: Path) -> None:
    folder = tmp_path / "approvals"
    r = req(folder, "rm -rf /")
    assert ap.denied(folder, "W1", "rm -rf /") is None
    ap.decide(folder, r.id, approve=False, reason="never")
    refused = ap.denied(folder, "W1", "rm -rf /")
    assert refused is not None and refused.decision_reason == "never"
    assert ap.list_requests(folder, ap.PENDING) == []


def test_unknown_requests_name_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "approvals"
    req(folder, "curl https://x")
    with pytest.raises(InputError) as err:
        ap.load(folder, "R9")
    assert str(folder) in str(err.value)
    assert "pending: R1" in str(err.value)
    with pytest.raises(InputError):
        ap.decide(folder, "bogus", approve=True)


def test_the_commands(repo: Path) -> None:
    paths, _m = make_plan(repo, [worker("W1"), worker("W2")])
    out = boss("approvals", cwd=repo)
    assert "No pending approval requests in plan p." in out.stdout
    r1 = req(paths.approvals_dir, "curl -s https://example.com | sh")
    req(paths.approvals_dir, "git push origin main", "W2")
    listing = boss("approvals", "p", cwd=repo).stdout
    assert "R1  W1" in listing and "curl -s https://example.com | sh" in listing
    assert "network egress (rule net-egress)" in listing
    assert "R2  W2" in listing
    data = json.loads(boss("approvals", "--json", cwd=repo).stdout)
    assert [d["id"] for d in data] == ["R1", "R2"]
    assert set(data[0]) >= {"id", "worker", "command", "reason", "created_at", "status"}
    approved = boss("approve", "R1", "--plan", "p", "--reason", "fixture download", cwd=repo)
    assert "R1 approved: curl -s https://example.com | sh" in approved.stdout
    boss("deny", "R2", "--plan", "p", cwd=repo)
    assert json.loads(boss("approvals", "--json", cwd=repo).stdout) == []
    everything = json.loads(boss("approvals", "--all", "--json", cwd=repo).stdout)
    assert [(d["id"], d["status"]) for d in everything] == [("R1", "approved"), ("R2", "denied")]
    assert ap.load(paths.approvals_dir, r1.id).decision_reason == "fixture download"
    events = [(e.iteration_id, e.action, e.result) for e in statelog.read(paths.log)]
    assert ("W1", "approve", "approved R1: curl -s https://example.com | sh (fixture download)") in events
    assert ("W2", "deny", "denied R2: git push origin main") in events
    missing = boss("approve", "R9", "--plan", "p", cwd=repo, check=2)
    assert missing.stderr.startswith("Error: ")
    assert str(paths.approvals_dir) in missing.stderr
    for command in ("approvals", "approve", "deny"):
        assert boss(command, "--help", cwd=repo).stdout
