"""How many agent runs talk to one provider at once (boss.core.limiter), with real processes.

The cap halves on a limit (at least 1, once per overload), grows by one after a run without a
limit (at most -j), a holder whose process is gone (or whose pid a later process was given) is
dropped, a file that does not parse is rebuilt with one line naming it, and processes taking
slots at the same time never hold more than the cap. The whole flow with eight real workers and
a model server that admits two requests at once is tests/contract/test_worker_concurrency.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boss.core.limiter import Full, Limits, Taken, file_name
from worker.agents.ratelimit import provider_key

ROOT = Path(__file__).resolve().parent.parent


def take(limits: Limits, worker: str, jobs: int = 8) -> Taken:
    got = limits.take(worker, jobs)
    assert isinstance(got, Taken), got
    return got


def history(limits: Limits) -> list[tuple[int, int, str]]:
    data = limits.read()
    assert data is not None
    return [(h["from"], h["cap"], h["why"]) for h in data["history"]]


def test_a_limit_halves_the_cap_once_per_overload_and_never_below_one(tmp_path: Path) -> None:
    limits = Limits(tmp_path, "codex")
    eight = [take(limits, f"W{n}") for n in range(8)]
    inode = limits.path.stat().st_ino
    assert isinstance(limits.take("W9", 8), Full)  # eight held: the ninth waits
    assert limits.path.stat().st_ino == inode  # and looking changed nothing, so wrote nothing
    first = limits.give_back(eight[0], "429 rate limit")
    assert first is not None and (first.before, first.after, first.max) == (8, 4, 8)
    # the others were limited by the same overload (they took their slots before the halving)
    assert all(limits.give_back(s, "429 rate limit") is None for s in eight[1:4])
    assert all(limits.give_back(s, None) is None for s in eight[4:])  # old news: no growth either
    data = limits.read()
    assert data is not None and (data["cap"], data["epoch"], data["holders"]) == (4, 1, [])
    for expected in (2, 1):
        slot = take(limits, "W1")
        change = limits.give_back(slot, "529 overload")
        assert change is not None and change.after == expected
    slot = take(limits, "W1")
    assert limits.give_back(slot, "429 rate limit") is None  # at the floor
    assert take(limits, "W2").cap == 1 and isinstance(limits.take("W3", 8), Full)
    assert history(limits) == [(8, 4, "429 rate limit"), (4, 2, "529 overload"), (2, 1, "529 overload")]


def test_a_run_without_a_limit_adds_one_up_to_the_max(tmp_path: Path) -> None:
    limits = Limits(tmp_path, "claude")
    limits.give_back(take(limits, "W1", 3), "429 rate limit")
    limits.give_back(take(limits, "W1", 3), "429 rate limit")
    assert take(limits, "W2", 3).cap == 1 and isinstance(limits.take("W1", 3), Full)
    limits.give_back(take(limits, "W2", 3), None, counts=False)  # W2 again: its own old entry goes
    grown = [limits.give_back(take(limits, "W1", 3), None) for _ in range(4)]
    assert [(c.before, c.after) if c else None for c in grown] == [(1, 2), (2, 3), None, None]
    # a run that did not run to its end (an exception, a stop) says nothing about the provider
    assert limits.give_back(take(limits, "W1", 3), None, counts=False) is None
    take(limits, "W2", 3)
    take(limits, "W1", 3)
    take(limits, "W3", 3)
    assert isinstance(limits.take("W4", 3), Full)


def test_a_smaller_j_lowers_the_cap_and_a_larger_one_lets_it_grow_back_to_it(tmp_path: Path) -> None:
    limits = Limits(tmp_path, "codex")
    limits.give_back(take(limits, "W1", 8), None)
    assert take(limits, "W1", 2).cap == 2  # a rerun with -j 2
    assert history(limits)[-1] == (8, 2, "-j is 2")
    limits.give_back(take(limits, "W1", 2), None)
    slot = take(limits, "W1", 4)  # -j 4: the learnt cap is kept, and grows one a run
    assert (slot.cap, slot.max) == (2, 4)
    change = limits.give_back(slot, None)
    assert change is not None and (change.before, change.after) == (2, 3)


def test_a_holder_whose_process_died_is_dropped(tmp_path: Path) -> None:
    limits = Limits(tmp_path, "codex")
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom boss.core.limiter import Limits\n"
        f"print(type(Limits(Path({str(tmp_path)!r}), 'codex').take('W1', 1)).__name__, flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "Taken"
        full = limits.take("W2", 1)
        assert isinstance(full, Full) and (full.running, full.cap) == (1, 1)
        os.kill(holder.pid, signal.SIGKILL)  # killed holding its slot, the file written
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
    slot = take(limits, "W2", 1)
    data = limits.read()
    assert data is not None and [h["worker"] for h in data["holders"]] == ["W2"] and slot.running == 1


def test_a_pid_given_to_a_later_process_does_not_keep_the_slot(tmp_path: Path) -> None:
    limits = Limits(tmp_path, "codex")
    take(limits, "W1", 1)
    data = limits.read()
    assert data is not None and data["holders"][0]["pid"] == os.getpid() and data["holders"][0]["start"] > 0
    data["holders"][0]["start"] -= 1  # the process that held it started earlier: not this one
    limits.path.write_text(json.dumps(data))
    assert take(limits, "W2", 1).running == 1


def test_a_worker_holds_one_slot_its_crashed_runs_entry_is_replaced(tmp_path: Path) -> None:
    limits = Limits(tmp_path, "codex")
    take(limits, "W1", 2)
    again = take(limits, "W1", 2)  # the same worker again (its last run's entry left behind)
    assert again.running == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a limits object"),
        (
            '{"cap": 0, "max": 8, "epoch": 0, "holders": [], "history": []}',
            "field cap: 0 is not a whole number",
        ),
        ('{"cap": 2, "max": 8, "epoch": 0, "holders": [{"pid": 1}], "history": []}', "field holders: "),
    ],
)
def test_a_file_that_does_not_parse_is_rebuilt_saying_so_in_one_line(
    tmp_path: Path, text: str, problem: str
) -> None:
    limits = Limits(tmp_path, "codex")
    limits.path.write_text(text)
    slot = take(limits, "W1", 3)
    assert slot.note.startswith(f"{limits.path}: {problem}") and "\n" not in slot.note
    assert "rebuilt, 3 agent run(s) at once" in slot.note
    assert (slot.cap, slot.running) == (3, 1)
    assert take(limits, "W2", 3).note == ""  # it is a good file again


def test_provider_keys_tell_endpoints_apart_and_are_safe_file_names() -> None:
    assert provider_key("codex", {}) == "codex"
    assert (
        provider_key("claude", {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8080/x"}) == "claude@127.0.0.1:8080"
    )
    assert (
        provider_key("aider", {"OPENAI_API_BASE": "https://user:pw@api.example.com/v1"})
        == "aider@api.example.com"
    )
    assert provider_key("opencode", {"OPENAI_BASE_URL": "http://x"}) == "opencode"
    assert file_name("claude@127.0.0.1:8080") == "claude@127.0.0.1_8080"
    assert file_name("../../etc/passwd") == "etc_passwd"
    assert "/" not in file_name("a/b\n/c") and len(file_name("x" * 500)) == 100


HOLDER = """
import os, sys, time
from pathlib import Path
from boss.core.limiter import Limits, Taken

folder, inside, worker, rounds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
limits = Limits(folder, "codex")
most = 0
for n in range(rounds):
    while not isinstance(slot := limits.take(worker, 8), Taken):
        time.sleep(0.005)
    mark = inside / f"{worker}-{n}"
    mark.touch()
    most = max(most, len(list(inside.iterdir())))
    time.sleep(0.02)
    mark.unlink()
    limits.give_back(slot, None, counts=False)
print(most)
"""


def test_processes_taking_slots_at_once_never_hold_more_than_the_cap(tmp_path: Path) -> None:
    limits = Limits(tmp_path / "limits", "codex")
    # the cap at 3 of 8, kept there (counts=False: no growth)
    limits.give_back(take(limits, "W0", 8), "429 rate limit")
    limits.give_back(take(limits, "W0", 8), "429 rate limit")
    limits.give_back(take(limits, "W0", 8), None)
    assert take(limits, "X", 8).cap == 3
    limits.give_back(take(limits, "X", 8), None, counts=False)
    inside = tmp_path / "inside"
    inside.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "limits"), str(inside), f"W{n}", "6"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    started = time.monotonic()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    most = max(int(o) for o in outs)
    assert 2 <= most <= 3, most  # they did overlap, and never past the cap
    data = limits.read()
    assert data is not None and data["holders"] == [] and data["cap"] == 3, data
    assert time.monotonic() - started < 120
