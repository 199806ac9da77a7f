"""worker.engine.warm: a node's warm helper forks each run, and a forked run is what a fresh
`python -P -m MODULE ARGS` would be: the same output, exit code, directory, environment, empty
standard input and import path (a module the run's folder holds never shadows the real one);
SIGTERM ends it as it ends a Popen'd one; a helper that ends never makes a live run look ended.

A probe module on PYTHONPATH stands for `worker`, which the node alone asks for (test_dask_*
run the real `worker run` through the helper on real nodes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boss.core.errors import StateError
from worker.engine import warm

PROBE = """
import atexit, colorsys, json, os, sys, time
if sys.argv[1:2] == ["sleep"]:
    print("sleeping", flush=True)
    time.sleep(60)
if sys.argv[1:2] == ["end"]:
    atexit.register(print, "atexit ran")
    print("unflushed", end="")
    if sys.argv[2] == "message":
        sys.exit("a message")
    if sys.argv[2] == "interrupt":
        raise KeyboardInterrupt
    raise RuntimeError("uncaught")
print(json.dumps({"cwd": os.getcwd(), "argv": sys.argv[1:], "value": os.environ.get("PROBE_VALUE"),
                  "colorsys": colorsys.__name__ + ":" + str(getattr(colorsys, "hls_to_rgb", None) is not None),
                  "path": [p for p in sys.path if p in ("", ".", os.getcwd())], "stdin": sys.stdin.read(),
                  "name": __name__}))
sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
"""


@pytest.fixture
def helper(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "probe_mod.py").write_text(PROBE)
    env = dict(os.environ, PYTHONPATH=str(lib))
    h = warm.Helper(env=env)
    yield h, env
    with contextlib.suppress(OSError):  # one test kills it
        h.requests.close()
    h.proc.wait(10)


def _work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "colorsys.py").write_text("raise SystemExit(99)\n")  # what an agent might leave there
    return work


def _wait_for(path: Path, text: str) -> None:
    deadline = time.monotonic() + 20
    while text not in path.read_text():
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(0.05)


def _sleeping(h, env, tmp_path: Path, name: str = ""):
    """A run of the probe that sleeps, seen asleep."""
    out = tmp_path / "sleep.out"
    run = h.start("probe_mod", ["sleep"], str(_work(tmp_path)), env, str(out), name=name)
    assert run is not None
    _wait_for(out, "sleeping")
    return run


def _kill(h) -> None:
    """The helper killed, and its end heard."""
    h.proc.kill()
    h.proc.wait(10)
    deadline = time.monotonic() + 10
    while not h.gone:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_forked_run_is_what_a_fresh_python_would_run(helper, tmp_path):
    h, env = helper
    work = _work(tmp_path)
    run_env = dict(env, PROBE_VALUE="v w", PROBE_EXIT="7")
    out = tmp_path / "forked.out"
    run = h.start("probe_mod", ["a", "b c"], str(work), run_env, str(out))
    assert run is not None and run.pid > 0
    assert run.wait(30) == 7 and run.returncode == 7
    fresh = subprocess.run([sys.executable, "-P", "-m", "probe_mod", "a", "b c"], cwd=work, env=run_env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)  # fmt: skip
    assert fresh.returncode == 7, fresh.stderr
    forked = json.loads(out.read_text())
    assert forked == json.loads(fresh.stdout)
    assert forked["cwd"] == str(work) and forked["argv"] == ["a", "b c"] and forked["value"] == "v w"
    assert forked["colorsys"] == "colorsys:True" and forked["path"] == [] and forked["stdin"] == ""
    assert forked["name"] == "__main__"


def test_a_named_run_shows_its_name_and_sigterm_ends_it_as_a_popend_one(helper, tmp_path):
    h, env = helper
    run = _sleeping(h, env, tmp_path, name="worker W9")
    assert Path(f"/proc/{run.pid}/comm").read_text().strip() == "worker W9"  # in ps and top
    with pytest.raises(subprocess.TimeoutExpired):
        run.wait(0.2)
    run.terminate()
    assert run.wait(20) == -signal.SIGTERM
    run.terminate()  # ended and reaped: nothing is signalled
    assert run.returncode == -signal.SIGTERM


def test_runs_overlap_and_each_gets_its_own_end(helper, tmp_path):
    h, env = helper
    work = _work(tmp_path)
    runs = [
        h.start("probe_mod", [str(n)], str(work), dict(env, PROBE_EXIT=str(n)), str(tmp_path / f"{n}.out"))
        for n in range(5)
    ]
    assert len({r.pid for r in runs if r is not None}) == 5
    assert [r.wait(30) for r in runs if r is not None] == [0, 1, 2, 3, 4]
    assert [json.loads((tmp_path / f"{n}.out").read_text())["argv"] for n in range(5)] == [
        [str(n)] for n in range(5)
    ]


def test_a_helper_that_ends_never_makes_a_live_run_look_ended(helper, tmp_path):
    h, env = helper
    run = _sleeping(h, env, tmp_path)
    _kill(h)
    with pytest.raises(subprocess.TimeoutExpired):
        run.wait(1.0)  # the run still runs: its helper's end is not its own
    assert h.start("probe_mod", [], str(tmp_path), env, str(tmp_path / "o")) is None  # start it another way
    run.terminate()  # nothing reaps it now: signalled directly
    assert run.wait(20) == warm.GONE


def test_the_node_starts_its_helper_once_and_again_when_it_ended(tmp_path, monkeypatch):
    monkeypatch.setattr(warm, "_helper", None)
    out = tmp_path / "help.out"
    first = warm.start(["--help"], str(tmp_path), dict(os.environ), str(out))
    assert isinstance(first, warm.Run) and first.wait(60) == 0
    assert "Usage: worker" in out.read_text()
    helper = warm._helper
    assert helper is not None
    second = warm.start(["--help"], str(tmp_path), dict(os.environ), str(out))
    assert isinstance(second, warm.Run) and second.wait(60) == 0 and warm._helper is helper
    _kill(helper)
    third = warm.start(["--help"], str(tmp_path), dict(os.environ), str(out))
    assert isinstance(third, warm.Run) and third.wait(60) == 0 and warm._helper is not helper
    warm._helper.requests.close()


@pytest.mark.parametrize("how", ["message", "interrupt", "error"])
def test_a_forked_run_ends_as_a_fresh_python_ends(helper, tmp_path, how):
    """sys.exit with a message, an uncaught Ctrl-C (the run dies of SIGINT), an uncaught error:
    the same exit code and output, atexit functions run, buffered output flushed."""
    h, env = helper
    work = _work(tmp_path)
    out = tmp_path / f"{how}.out"
    run = h.start("probe_mod", ["end", how], str(work), env, str(out))
    assert run is not None
    code = run.wait(30)
    fresh = subprocess.run([sys.executable, "-P", "-m", "probe_mod", "end", how], cwd=work, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, check=False)  # fmt: skip
    assert code == fresh.returncode == {"message": 1, "interrupt": -signal.SIGINT, "error": 1}[how]
    forked = out.read_text()
    for text in ("unflushed", "atexit ran", {"message": "a message", "interrupt": "KeyboardInterrupt",
                                             "error": "RuntimeError: uncaught"}[how]):  # fmt: skip
        assert text in forked and text in fresh.stdout, (forked, fresh.stdout)


def _next_pid_is(pid: int) -> bool:
    """Ask the kernel to give pid to the next process (root); False where it cannot be asked."""
    try:
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
    except OSError:
        return False
    return True


def test_a_pid_given_again_is_a_new_run_not_the_old_ones_end(helper, tmp_path):
    """A run nobody waited on ends; its pid goes to the next run: that run is not taken as ended."""
    h, env = helper
    work = _work(tmp_path)
    env = dict(env, PROBE_EXIT="3")  # both runs' (the helper asks its once-per-environment questions,
    # which start processes, before the first run only: nothing takes the pid before the second)
    first = h.start("probe_mod", ["x"], str(work), env, str(tmp_path / "first.out"))
    assert first is not None
    deadline = time.monotonic() + 20
    while first.pid not in h.codes:  # its end heard, and never waited on
        assert time.monotonic() < deadline
        time.sleep(0.05)
    if not _next_pid_is(first.pid):
        pytest.skip("the next pid cannot be chosen here (needs root)")
    second = h.start("probe_mod", ["sleep"], str(work), env, str(tmp_path / "second.out"))
    assert second is not None
    if second.pid != first.pid:
        second.terminate()
        second.wait(20)
        pytest.skip("another process took the pid meanwhile")
    with pytest.raises(subprocess.TimeoutExpired):
        second.wait(0.5)  # not the first run's 3
    second.terminate()
    assert second.wait(20) == -signal.SIGTERM


def test_with_its_helper_gone_a_run_is_known_by_pid_and_start_time(helper, tmp_path):
    """The helper ends, then the run: a process given the run's pid afterwards is neither waited
    on nor signalled as the run."""
    h, env = helper
    run = _sleeping(h, env, tmp_path)
    _kill(h)
    os.kill(run.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{run.pid}").exists():  # reaped by whoever adopted it
        if time.monotonic() > deadline:
            pytest.skip("nothing reaps an orphan here: its pid is never free")
        time.sleep(0.05)
    if not _next_pid_is(run.pid):
        pytest.skip("the next pid cannot be chosen here (needs root)")
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        if stranger.pid != run.pid:
            pytest.skip("another process took the pid meanwhile")
        assert run.wait(10) == warm.GONE  # the stranger is not the run
        run.terminate()
        assert stranger.poll() is None  # and is not signalled as it
    finally:
        stranger.kill()
        stranger.wait()


def test_a_helper_that_ends_before_it_answers_is_an_error_not_a_second_run(tmp_path, monkeypatch):
    """Lines that are not the protocol's are passed over; a helper that ends without answering a
    start may have started the run: the start is an error (run the worker again), never a fresh
    run beside it."""
    fake = "import sys; print('[1]'); print('{\"pid\": \"a\"}'); print('not json', flush=True); sys.stdin.readline()"
    monkeypatch.setattr(warm, "HELPER", [sys.executable, "-c", fake])
    h = warm.Helper()
    with pytest.raises(StateError, match="warm helper ended while it started the run"):
        h.start("probe_mod", [], str(tmp_path), dict(os.environ), str(tmp_path / "o"))
    assert h.gone


IDENTITY_PROBE = """
import json
from boss.core import git, sandbox
print(json.dumps({"asked": git._IDENTITY is not None, "probed": sandbox.probe.cache_info().currsize,
                  "identity": git.identity_env()}))
"""


def test_a_run_inherits_what_the_helper_asked_once_for_its_environment_and_no_other(tmp_path):
    """Git's identity fallback and the sandbox probe are asked once in the helper (a run forked
    after has them), and asked again when a run's environment differs: a run never gets another
    environment's answer."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "identity_probe.py").write_text(IDENTITY_PROBE)
    named = tmp_path / "named.gitconfig"
    named.write_text("[user]\n\tname = Named\n\temail = n@example.com\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env = dict(base, PYTHONPATH=str(lib), GIT_CONFIG_GLOBAL=str(named), GIT_CONFIG_NOSYSTEM="1")
    h = warm.Helper(env=env)
    try:
        seen = []
        for n, gitconfig in enumerate((named, named, tmp_path / "none.gitconfig")):
            run_env = dict(env, GIT_CONFIG_GLOBAL=str(gitconfig))
            out = tmp_path / f"id{n}.out"
            run = h.start("identity_probe", [], str(_work(tmp_path)), run_env, str(out))
            assert run is not None and run.wait(30) == 0, out.read_text()
            seen.append(json.loads(out.read_text()))
        assert seen[0]["asked"] and seen[0]["identity"] == {}
        assert seen[0]["probed"] == (1 if shutil.which("bwrap") else 0)
        assert seen[1] == seen[0]
        # Another environment (no identity configured): asked again, the fallback identity.
        assert seen[2]["identity"]["GIT_AUTHOR_NAME"] == "boss"
    finally:
        h.requests.close()
        h.proc.wait(10)


PROBE_PROBE = """
import json, os
from boss.core import sandbox
print(json.dumps({"why": sandbox.probe(sandbox.tool_path()), "starts": len(open(os.environ["COUNT"]).read())}))
"""


@pytest.mark.skipif(not shutil.which("bwrap"), reason="needs bubblewrap")
def test_a_failed_sandbox_probe_is_never_handed_on_to_later_runs(tmp_path):
    """A bubblewrap that fails its first start (a passing failure: user namespaces used up for a
    moment) fails the helper's probe; the run forked then probes for itself and is sandboxed, and
    the next start probes again and hands its success on."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "probe_probe.py").write_text(PROBE_PROBE)
    count, fake = tmp_path / "count", tmp_path / "bwrap"
    count.write_text("")
    fake.write_text(f'#!/bin/sh\nprintf . >> {count}\n'
                    f'[ "$(wc -c < {count})" -le 1 ] && {{ echo "bwrap: no namespace" >&2; exit 1; }}\n'
                    f'exec {shutil.which("bwrap")} "$@"\n')  # fmt: skip
    fake.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(lib), BOSS_BWRAP=str(fake), COUNT=str(count))
    env.pop("BOSS_SANDBOX", None)
    h = warm.Helper(env=env)
    try:
        seen = []
        for n in range(3):
            out = tmp_path / f"p{n}.out"
            run = h.start("probe_probe", [], str(_work(tmp_path)), env, str(out))
            assert run is not None and run.wait(60) == 0, out.read_text()
            seen.append(json.loads(out.read_text()))
        assert [s["why"] for s in seen] == ["", "", ""], seen
        # The helper's failed probe, run 0's own, the helper's again (kept, inherited by runs 1, 2).
        assert [s["starts"] for s in seen] == [2, 3, 3], seen
    finally:
        h.requests.close()
        h.proc.wait(10)
