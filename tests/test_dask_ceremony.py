"""`boss merge --engine dask`: the ceremony's test slots on a real cluster on loopback (README,
"Running on a Dask cluster").

A `dask scheduler` and two `dask worker` nodes (their own local folders, every port on
127.0.0.1) and a bare repository as the shared remote. The same plan is built twice by the same
function (tests/test_merge_slots.py); one copy is merged here with `--slots 1` (the serial
ceremony), the other with its test runs on the nodes: the verdicts, why each was dropped, the
merges that landed and main's tree are the same; every run's log shows it ran in a node's folder;
nothing of the ceremony is left on the remote or the nodes. A node killed during the ceremony
costs a rerun on the other node, not a verdict. Skipped without `distributed` (the dask extra)
unless BOSS_DASK_REQUIRED=1, as in CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import boss, git
from merge_helpers import make_scenario, pytest_command, spec
from test_dask_engine import Cluster, cluster_env, distributed
from test_merge_slots import BAD, FILES, ceremony, every_landed_commit_passed, evidence, new, outcome

# Its module cluster is started once, on one xdist worker (scripts/test.sh: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("dask_ceremony")

CHECK = "pwd && sleep 0.2 && bash check.sh"  # the log shows where the run was made


def start_cluster(root: Path, nodes: int = 2) -> Cluster:
    root.mkdir(parents=True, exist_ok=True)
    c = Cluster(root, cluster_env(root))
    try:
        for n in range(nodes):
            c.add_node(f"node{n}")
        c.wait_for(nodes)
    except BaseException:
        c.stop()
        raise
    return c


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c
    finally:
        c.stop()


def build(root: Path, work, *, integration_test: str = CHECK, files=FILES):
    s = make_scenario(root, [w for w, _ in work], integration_test=integration_test, files=files)
    for w, files_ in work:
        s.work(w["id"], files_)
    return s


def bare_remote(s) -> Path:
    remote = s.repo.parent / f"{s.repo.name}-remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(s.repo), str(remote)], check=True)
    return remote


def on_cluster(s, cluster: Cluster, remote: Path, *args: str):
    """`boss merge p --engine dask ... --json` as a user runs it: report.json's content, the
    exit code and the progress lines added."""
    where = ("--engine", "dask", "--scheduler", cluster.address, "--remote", str(remote))
    proc = boss("merge", "p", *where, "--json", *args, cwd=s.repo, check=None)
    assert proc.returncode in (0, 1), (proc.returncode, proc.stdout, proc.stderr)
    data = json.loads(proc.stdout)
    data["exit"], data["stderr"] = proc.returncode, proc.stderr
    return data


def slot_logs(s) -> list[Path]:
    logs = sorted(s.paths.root.glob("merge/history/*/logs/slot.int.*.log"))  # they print where they ran
    assert logs, list(s.paths.root.rglob("*.log"))
    return logs


def nothing_left(s, cluster: Cluster, remote: Path) -> None:
    """No ref of the ceremony on the remote, no slot folder on a node, no slot worktree here."""
    assert git(remote, "for-each-ref", "refs/boss-ceremony/p/") == ""
    slots = [p for p in cluster.root.rglob("boss-slots") if p.is_dir()]  # in each node's local folder
    assert slots, "no node made a slot"
    leftovers = [p for folder in slots for p in folder.iterdir() if p.is_dir()]
    assert leftovers == [], leftovers
    assert "_slot" not in git(s.repo, "worktree", "list")


def test_the_ceremony_on_the_cluster_gives_the_serial_answer(cluster, tmp_path):
    work = [(spec(f"W{i}"), new(f"W{i}")) for i in range(1, 7)]
    work[2] = (spec("W3"), {**new("W3"), **BAD})  # breaks the integration test: dropped
    work[3] = (spec("W4"), {**new("W4"), "src/shared.txt": "one\nW4\nthree\n"})
    work[4] = (spec("W5"), {**new("W5"), "src/shared.txt": "one\nW5\nthree\n"})  # conflicts with W4
    work[5] = (spec("W6", test="test -f src/never.txt"), new("W6"))  # its acceptance test fails
    local = build(tmp_path / "local", work)
    serial = ceremony(local, 1)
    s = build(tmp_path / "cluster", work)
    remote = bare_remote(s)

    data = on_cluster(s, cluster, remote)

    expected = {"W1": "MERGED", "W2": "MERGED", "W3": "REVERTED", "W4": "MERGED", "W5": "CONFLICT"}
    assert outcome(local, serial)["verdicts"] == expected | {"W6": "REVERTED"}, evidence(local, serial)
    assert outcome(s, data) == outcome(local, serial), f"{evidence(s, data)}\n{data['stderr']}"
    every_landed_commit_passed(s)
    assert data["slots"] == 4  # two nodes of two threads
    assert f"test slots: 4 on the Dask cluster at {cluster.address}" in data["stderr"]
    ran_on = {line.rsplit("ran on node ", 1)[1].split()[0] for line in data["stderr"].splitlines()
              if "ran on node " in line}  # fmt: skip
    assert ran_on and ran_on <= {"node0", "node1"}, data["stderr"]
    for log in slot_logs(s):  # made in a node's own folder, not here
        first = log.read_text().splitlines()[0]
        assert first.startswith(str(cluster.root / "node")) and "/boss-slots/" in first, (log, first)
    nothing_left(s, cluster, remote)


def test_pytest_failures_are_read_from_the_nodes_reports(cluster, tmp_path):
    files = {
        "README.md": "# sample\n",
        "tests/test_base.py": "def test_known_red():\n    assert False\n",
    }
    work = [
        (spec("W1", scope=["^tests/"]), {"tests/test_w1.py": "def test_w1():\n    assert True\n"}),
        (spec("W2", scope=["^tests/"]), {"tests/test_w2.py": "def test_w2():\n    assert 1 == 2\n"}),
    ]
    command = pytest_command()
    local = build(tmp_path / "local", work, integration_test=command, files=files)
    serial = ceremony(local, 1)
    s = build(tmp_path / "cluster", work, integration_test=command, files=files)
    remote = bare_remote(s)

    data = on_cluster(s, cluster, remote, "--slots", "2")

    assert outcome(s, data) == outcome(local, serial), f"{evidence(s, data)}\n{data['stderr']}"
    w2 = next(w for w in data["workers"] if w["id"] == "W2")
    assert w2["verdict"] == "REVERTED" and w2["new_failures"] == ["tests.test_w2::test_w2"], w2
    assert data["slots"] == 2


def test_a_failing_setup_on_a_node_is_one_line_and_the_ceremony_resumes(cluster, tmp_path):
    files = {**FILES, ".gitignore": "setup-ran\n"}  # what setup makes is ignored (README)
    s = make_scenario(
        tmp_path / "cluster", [spec("W1"), spec("W2"), spec("W3")], integration_test=CHECK, files=files
    )
    s.work("W1", new("W1"))
    s.work("W2", new("W2"))  # W3 has not run: not queued yet
    manifest = s.paths.manifest.read_text()
    raw = yaml.safe_load(manifest)
    raw["setup"] = "echo no-such-tool >&2; exit 3"
    s.paths.manifest.write_text(yaml.safe_dump(raw))
    remote = bare_remote(s)
    where = ("--engine", "dask", "--scheduler", cluster.address, "--remote", str(remote))

    proc = boss("merge", "p", *where, cwd=s.repo, check=1)

    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "setup failed in a test slot (exit 3): no-such-tool" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    raw["setup"] = "touch setup-ran"  # fixed: the next run resumes the ceremony
    s.paths.manifest.write_text(yaml.safe_dump(raw))
    (s.repo / ".boss/config.yaml").write_text(
        f"engine: dask\nscheduler: {cluster.address}\nremote: {remote}\n"
    )
    again = boss("merge", "p", "--json", cwd=s.repo, check=0)
    verdicts = {w["id"]: w["verdict"] for w in json.loads(again.stdout)["workers"]}
    assert (verdicts["W1"], verdicts["W2"]) == ("MERGED", "MERGED"), again.stderr
    assert "on the Dask cluster" in again.stderr
    nothing_left(s, cluster, remote)
    integration = s.paths.worktree_root / "p" / "_integration"
    assert not (integration / "setup-ran").exists()  # no test ran here: no setup here
    s.work("W3", new("W3"))
    (s.repo / ".boss/config.yaml").write_text("")
    here = boss("merge", "p", "--slots", "1", cwd=s.repo, check=0)
    assert (integration / "setup-ran").exists(), here.stderr  # a ceremony here sets it up first


def test_a_node_killed_during_the_ceremony_costs_a_rerun_not_a_verdict(tmp_path):
    c = start_cluster(tmp_path / "own-cluster")
    try:
        work = [(spec(f"W{i}"), new(f"W{i}")) for i in range(1, 5)]
        work[1] = (spec("W2"), {**new("W2"), **BAD})
        slow = "pwd && sleep 3 && bash check.sh"
        local = build(tmp_path / "local", work)  # the same verdicts, without the wait
        serial = ceremony(local, 1)
        s = build(tmp_path / "cluster", work, integration_test=slow)
        remote = bare_remote(s)
        where = ("--engine", "dask", "--scheduler", c.address, "--remote", str(remote))
        proc = subprocess.Popen(
            [sys.executable, "-m", "boss", "merge", "p", *where, "--json"], cwd=s.repo, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not list((c.root / "node0").rglob("*.run.log")):  # a test under way on node0
            assert time.monotonic() < deadline and proc.poll() is None, "no run started on node0"
            time.sleep(0.1)
        c.kill_node("node0")  # with the test it was running
        out, err = proc.communicate(timeout=300)
        assert proc.returncode in (0, 1), (out, err)
        data = json.loads(out)
        data["exit"] = proc.returncode
        assert outcome(s, data) == outcome(local, serial), f"{evidence(s, data)}\n{err}"
        assert "ran on node node1" in err, err
        every_landed_commit_passed(s)
    finally:
        c.stop()


# A candidate's acceptance test that tries to take over its node slot: point the slot's git at
# the node's mirror, replace the slot's .git, and plant a file in the git folder; `true` so the
# test itself passes wherever the attempts fail.
HOSTILE = (
    'git config core.worktree "$PWD/../../../boss-cache" 2>/dev/null; '
    "echo 'gitdir: /tmp' > .git 2>/dev/null; "
    'touch "$(git rev-parse --git-dir 2>/dev/null)/planted" 2>/dev/null; true'
)


def test_a_test_cannot_steer_its_slots_next_checkout(cluster, tmp_path):
    work = [
        (spec("W1", test=HOSTILE), new("W1")),
        (spec("W2"), {**new("W2"), **BAD}),
        (spec("W3"), new("W3")),
    ]
    local = build(tmp_path / "local", work)
    serial = ceremony(local, 1)
    s = build(tmp_path / "cluster", work)
    remote = bare_remote(s)

    data = on_cluster(s, cluster, remote, "--slots", "1")  # one slot at a time: W1's slot runs the rest

    assert outcome(local, serial)["verdicts"] == {"W1": "MERGED", "W2": "REVERTED", "W3": "MERGED"}
    assert outcome(s, data) == outcome(local, serial), f"{evidence(s, data)}\n{data['stderr']}"
    assert not [p for p in cluster.root.rglob("boss-cache/*/src") if p.exists()]  # no checkout there
    assert not list(cluster.root.rglob("planted"))


def test_a_new_slot_is_set_up_at_the_base_before_the_candidate(cluster, tmp_path):
    work = [(spec("W1"), new("W1")), (spec("W2"), new("W2"))]
    s = build(
        tmp_path / "cluster", work, files={**FILES, ".gitignore": "setup-saw.txt\n"}
    )  # setup's: ignored
    raw = yaml.safe_load(s.paths.manifest.read_text())
    raw["setup"] = "ls src > setup-saw.txt; test ! -e src/w1.txt"  # the base has no src/w1.txt
    raw["integration_test"] = "cat setup-saw.txt && " + CHECK
    s.paths.manifest.write_text(yaml.safe_dump(raw))
    remote = bare_remote(s)

    data = on_cluster(s, cluster, remote, "--slots", "2")

    assert {w["id"]: w["verdict"] for w in data["workers"]} == {"W1": "MERGED", "W2": "MERGED"}, data[
        "stderr"
    ]
    for log in slot_logs(s):
        assert log.read_text().splitlines()[0] == "shared.txt", log.read_text()  # what setup saw: the base


def test_a_dropped_run_is_stopped_on_its_node(cluster, tmp_path):
    from worker.engine import ceremony_node

    s = build(tmp_path / "cluster", [(spec("W1"), new("W1"))])
    remote = bare_remote(s)
    base = git(s.repo, "rev-parse", "main")
    ref = f"refs/boss-ceremony/p/{base}"
    git(s.repo, "push", "-q", str(remote), f"{base}:{ref}")
    key = f"stop-test-{tmp_path.name}"
    task = {
        "remote": str(remote), "plan": "p", "session": f"stoptest-{tmp_path.name}", "setup": "", "copy": {},
        "sandbox": "auto", "log_cap": 1 << 20, "ref": ref, "base_ref": ref, "base": base, "commit": base,
        "command": "trap '' TERM; echo started; sleep 60", "kind": "int", "worker": "", "limit": 120.0, "network": False,
        "stop": f"{key}-stop",
    }  # fmt: skip
    with distributed.Client(cluster.address, timeout=30, set_as_default=False) as client:
        future = client.submit(ceremony_node.run_test, task, key=key, pure=False)
        deadline = time.monotonic() + 60
        while not list(cluster.root.rglob(f"stoptest-{tmp_path.name}/*.run.log")):
            assert time.monotonic() < deadline and not future.done(), future
            time.sleep(0.1)
        time.sleep(0.5)
        began = time.monotonic()
        distributed.Event(f"{key}-stop", client=client).set()
        result = future.result(timeout=30)
    assert time.monotonic() - began < 10, "the run was not stopped"
    assert result["exit_code"] != 0 and b"started" in result["log"], result


def test_what_a_test_run_leaves_never_reaches_the_next_run_on_a_node(cluster, tmp_path):
    """A node's slot, reused by the ceremony's runs, as a slot here: an untracked file a run left
    (a `conftest.py`, say) is gone before the next; the copied .env and what setup made stay."""
    from test_merge_slots import PLANT

    work = [(spec(f"W{i}"), new(f"W{i}")) for i in range(1, 6)]
    s = build(tmp_path / "cluster", work, integration_test=PLANT, files={**FILES, ".gitignore": "built/\n"})
    raw = yaml.safe_load(s.paths.manifest.read_text())
    raw["setup"], raw["copy"] = "mkdir -p built && touch built/done", [".env"]
    s.paths.manifest.write_text(yaml.safe_dump(raw))
    (s.repo / ".env").write_text("TOKEN=local\n")
    remote = bare_remote(s)

    data = on_cluster(s, cluster, remote, "--slots", "2")

    verdicts = {w["id"]: w["verdict"] for w in data["workers"]}
    assert verdicts == {f"W{i}": "MERGED" for i in range(1, 6)}, (evidence(s, data), data["stderr"])
    assert not any(w["retried"] for w in data["workers"]), evidence(s, data)
