"""Fuzz the readers of every file boss keeps: a mutated file reads, or fails as boss fails.

Each reader gets a valid file with random mutations (byte flips, truncation, NUL bytes, a
duplicated line, a value of the wrong type, a huge number, deep nesting). The property: it
returns a valid object, or raises BossError whose message names the file; never another
exception. Seeded (derandomize) and bounded, so CI runs the same examples every time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from boss.core import journal, spend, statelog
from boss.core import manifest as mf
from boss.core import status as st
from boss.core.config import load_config
from boss.core.errors import BossError, ManifestError
from boss.plan import markdown_plan
from worker.autonomy import policy_file

# BOSS_FUZZ_EXAMPLES=5000 for a deeper run by hand; CI runs the default, the same every time.
EXAMPLES = int(os.environ.get("BOSS_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MANIFEST = """\
version: 1
plan: demo
task: Add a calculator
base: main
base_commit: 0123456789abcdef0123456789abcdef01234567
integration_test: pytest -q
setup: pip install -e .
copy: [.env.example]
defaults:
  agent: claude
  max_iterations: 3
  max_strategies: 2
  agent_timeout: 1800
  test_timeout: 600
  stall_timeout: 600
workers:
- id: W1
  title: Add
  branch: feat/w1-add
  scope: ['^src/calc\\.py$', '^tests/']
  depends_on: []
  test: pytest -q tests/test_add.py
  instructions: |
    Write add().
- id: W2
  title: Sub
  scope: ^src/sub/
  depends_on: [W1]
  test: "pytest -q tests/test_sub.py"
  write_test: true
  max_iterations: 2
"""

MARKDOWN = """\
# Calculator

Add a calculator.

- integration test: `pytest -q`
- max iterations: 3

## W1: Add

- scope: `^src/calc\\.py$`, ^tests/
- test: `pytest -q tests/test_add.py`

Write add().

## W2: Sub

- scope: ^src/sub/
- depends on: W1
- test: pytest -q tests/test_sub.py
- agent timeout: 900

Write sub().
"""

CONFIG = """\
jobs: 4
worktree_root: ../wt
planner_timeout: 300
heartbeat_stale: 60
log_cap_mb: 10
agents:
  mine:
    command: ./my-agent --prompt "$BOSS_PROMPT"
    read_only_command: ./my-agent --plan
    env: {MODE: fast, LEVEL: 3}
    description: our own agent
  short: ./other-agent
"""

POLICY = """\
version: 1
rules:
  - id: deploy-check
    tier: 1
    reason: our dry-run deploy check
    match: {prefix: [make, deploy-check], max_operands: 2}
    examples: {match: ["make deploy-check"], not_match: ["make deploy"]}
  - id: net-egress
    reason: network egress (our wording)
  - id: eval
    disabled: true
paths:
  writable: [/tmp/ourproject-*]
defaults:
  unknown_command: 2
tiers:
  1: harmless
targets:
  mytool:
    operands: write
    options: {-o: create}
    when_flags: [-w]
"""

STATUS = st.Status(
    plan="demo",
    id="W1",
    state=st.FAILED,
    branch="feat/w1-add",
    worktree="/tmp/wt/W1",
    start_commit="0123456789",
    pid=1234,
    strategy=2,
    iteration=3,
    reason="the test failed",
    violations=["docs/x.md"],
    red={"exit_code": 1, "log": "workers/W1/attempts/red/test.log"},
    usage={"input_tokens": 300, "cost_usd": 0.75},
).to_json()

JOURNAL = journal.Journal(
    plan="demo",
    base="main",
    base_start="0123456789",
    integration_branch="boss/integration/demo",
    worktree="/tmp/wt/integration",
    step=journal.MERGING,
    records=[
        journal.Record(id="W1", branch="feat/w1", state="SUCCESS", queued=True, verdict="MERGED"),
        journal.Record(id="W2", branch="feat/w2", state="FAILED", out_of_scope=["x"]),
    ],
    queue=["W1"],
    current={"id": "W1", "pre": "0123", "started": "now"},
    tested={"abc": {"exit": 0}},
    test_runs=2,
    events=[{"step": "merge", "at": "now"}],
).to_json()

STATELOG = (
    statelog.HEADER
    + "\n"
    + "\n".join(
        statelog.Event(
            f"2026-12-0{i}T00:00:00Z", "RUNNING", f"W{i}.s1.i1", "agent", "exit=0 | a\\b", "x.log"
        ).line()
        for i in range(1, 6)
    )
    + "\n"
)

WEIRD: list[Any] = [
    None,
    True,
    0,
    -1,
    10**30,
    2**63,
    1.5,
    float("inf"),
    "",
    "x\0y",
    "\x1b[31mred",
    "W1",
    [],
    ["a", 1],
    {},
    {"a": {"b": 1}},
]


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@hs.composite
def _tree_mutation(draw: hs.DrawFn, data: Any) -> Any:
    """data with one node replaced, removed, or given an unknown sibling."""
    if not isinstance(data, dict | list) or not data or draw(hs.integers(0, 3)) == 0:
        choice = draw(hs.integers(0, len(WEIRD) + 1))
        if choice == len(WEIRD):
            return _deep(draw(hs.sampled_from([5, 50, 200])))
        if choice == len(WEIRD) + 1:
            return draw(hs.text(max_size=20))
        return WEIRD[choice]
    if isinstance(data, dict):
        key = draw(hs.sampled_from(sorted(data, key=str)))
        out = dict(data)
        op = draw(hs.integers(0, 5))
        if op == 0:
            del out[key]
        elif op == 1:
            out[draw(hs.sampled_from(["bogus", 7, "id", "\0"]))] = draw(_tree_mutation(None))
        else:
            out[key] = draw(_tree_mutation(data[key]))
        return out
    i = draw(hs.integers(0, len(data) - 1))
    items = list(data)
    items[i] = draw(_tree_mutation(items[i]))
    return items


@hs.composite
def _byte_mutation(draw: hs.DrawFn, data: bytes) -> bytes:
    """data with a few byte-level mutations."""
    for _ in range(draw(hs.integers(1, 3))):
        op = draw(hs.integers(0, 6))
        at = draw(hs.integers(0, max(len(data) - 1, 0)))
        if op == 0 and data:  # flip bits
            data = data[:at] + bytes([data[at] ^ draw(hs.integers(1, 255))]) + data[at + 1 :]
        elif op == 1:  # truncate
            data = data[:at]
        elif op == 2:  # a NUL byte
            data = data[:at] + b"\0" + data[at:]
        elif op == 3:  # random bytes
            data = data[:at] + draw(hs.binary(max_size=8)) + data[at:]
        elif op == 4:  # a line twice (a duplicate key, a duplicate worker)
            lines = data.split(b"\n")
            n = draw(hs.integers(0, len(lines) - 1))
            lines.insert(n, lines[n])
            data = b"\n".join(lines)
        elif op == 5:  # invalid UTF-8
            data = data[:at] + b"\xff\xfe" + data[at:]
        else:  # a number too long to convert, or nesting too deep for a recursive parser
            data = data[:at] + draw(hs.sampled_from([b"9" * 5000, b"[" * 5000, b"{" * 3000])) + data[at:]
    return data


def mutated(valid: str, load: Callable[[str], Any], dump: Callable[[Any], str]) -> hs.SearchStrategy[bytes]:
    """Byte-level and structural mutations of a valid file's text."""
    raw = valid.encode()
    structural = _tree_mutation(load(valid)).map(lambda d: dump(d).encode())
    return hs.one_of(_byte_mutation(raw), structural, structural.flatmap(_byte_mutation))


def _yaml_dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    except RecursionError:  # too deep for PyYAML's own writer: the byte mutations nest deeper
        return "[" * 5000


def _json_dump(data: Any) -> str:
    try:
        return json.dumps(data, indent=2)
    except (ValueError, RecursionError):
        return "{}"


def _json_load(text: str) -> Any:
    return json.loads(text)


def check(read: Callable[[], Any], name: str) -> Any:
    """read(), or a BossError whose every line names the file: nothing else."""
    try:
        return read()
    except ManifestError as e:
        assert e.problems, e
        for line in e.problems:
            assert name in line, line
            assert "\n" not in line, line
    except BossError as e:
        assert name in str(e), str(e)
    return None


@FUZZ
@given(data=mutated(MANIFEST, yaml.safe_load, _yaml_dump))
def test_manifest_reader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_bytes(data)
    m = check(lambda: mf.load(path), "manifest.yaml")
    if m is not None:
        assert isinstance(m, mf.Manifest)
        for w in m.workers:  # what the worker will run: no NUL can reach an argv
            assert "\0" not in w.test + w.branch + w.id + "".join(w.scope) + w.instructions


@FUZZ
@given(data=_byte_mutation(MARKDOWN.encode()))
def test_markdown_plan_reader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "PLAN.md"
    path.write_bytes(data)

    def read() -> mf.Manifest:
        raw = markdown_plan.read(path, "PLAN.md")
        raw.setdefault("base", "main")
        return mf.from_dict(raw, "PLAN.md")

    m = check(read, "PLAN.md")
    if m is not None:
        assert all("\0" not in w.test + w.instructions + "".join(w.scope) for w in m.workers)


@FUZZ
@given(data=mutated(CONFIG, yaml.safe_load, _yaml_dump))
def test_config_reader(tmp_path: Path, data: bytes) -> None:
    (tmp_path / ".boss").mkdir(exist_ok=True)
    (tmp_path / ".boss" / "config.yaml").write_bytes(data)
    config = check(lambda: load_config(tmp_path), "config.yaml")
    if config is not None:
        assert config.log_cap_mb >= 1 and all("\0" not in a.command for a in config.agents.values())


@pytest.fixture
def policy_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@settings(FUZZ, max_examples=max(EXAMPLES // 4, 1))  # each reads the default policy too, and checks examples
@given(data=mutated(POLICY, yaml.safe_load, _yaml_dump))
def test_policy_reader(tmp_path: Path, policy_cache: None, data: bytes) -> None:
    (tmp_path / ".boss").mkdir(exist_ok=True)
    (tmp_path / ".boss" / "policy.yaml").write_bytes(data)
    check(lambda: policy_file.load(tmp_path), "policy.yaml")


@FUZZ
@given(data=mutated(STATUS, _json_load, _json_dump))
def test_status_reader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "status.json"
    path.write_bytes(data)
    status = check(lambda: st.read(path), "status.json")
    if status is not None:
        assert status.state in st.STATES
        st.effective_state(status, 60)  # what boss status does with it


@FUZZ
@given(data=mutated(JOURNAL, _json_load, _json_dump))
def test_journal_reader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "journal.json"
    path.write_bytes(data)
    j = check(lambda: journal.load(path), "journal.json")
    if j is not None:
        assert j.step in journal.STEPS
        assert all(isinstance(r.id, str) for r in j.records)


@FUZZ
@given(data=_byte_mutation(STATELOG.encode()))
def test_state_log_reader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "log"
    path.write_bytes(data)
    events = statelog.read(path)
    assert all(isinstance(e, statelog.Event) and e.line().count("\n") == 0 for e in events)


LEDGER = json.dumps({"version": 1, "runs": [
    {"where": "W1.s1.i1", "agent": "claude", "usage": {"cost_usd": 0.12, "input_tokens": 4000,
     "output_tokens": 300, "seconds": 41.5}, "stopped": False}], "live": {"cost_usd": 0.01}}, indent=1)  # fmt: skip


@FUZZ
@given(data=mutated(LEDGER, _json_load, _json_dump))
def test_spend_ledger_reader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "spend.json"
    path.write_bytes(data)
    ledger = spend.read_file(path)  # boss's own record: what does not read counts nothing
    spent = ledger.spent()
    assert set(spent) == set(spend.KEYS) and all(
        0 <= v <= len(ledger.runs) * 1e15 + 1e15 for v in spent.values()
    )
    assert len(spend.table(ledger)) == len(ledger.runs) + 3
    spend.describe(spent, len(ledger.runs))


def test_the_valid_files_read(tmp_path: Path, policy_cache: None) -> None:
    """The seeds themselves are valid, so every mutation starts from a file that reads."""
    assert mf.from_dict(yaml.safe_load(MANIFEST), "m").workers[1].depends_on == ("W1",)
    raw = markdown_plan.parse(MARKDOWN, "PLAN.md")
    assert mf.from_dict({**raw, "base": "main"}, "PLAN.md").workers[1].overrides == {"agent_timeout": 900}
    assert journal.from_dict(json.loads(JOURNAL), "j").records[0].verdict == "MERGED"
    (tmp_path / ".boss").mkdir()
    (tmp_path / ".boss" / "config.yaml").write_text(CONFIG)
    (tmp_path / ".boss" / "policy.yaml").write_text(POLICY)
    assert load_config(tmp_path).agents["mine"].env == {"MODE": "fast", "LEVEL": "3"}
    assert any(r.id == "deploy-check" for r in policy_file.load(tmp_path).rules)
    (tmp_path / "status.json").write_text(STATUS)
    status = st.read(tmp_path / "status.json")
    assert status is not None and status.usage == {"input_tokens": 300, "cost_usd": 0.75}
    (tmp_path / "log").write_text(STATELOG)
    assert [e.result for e in statelog.read(tmp_path / "log")] == ["exit=0 | a\\b"] * 5


# Mutations the fuzzer met rarely, or that once crashed a reader: each runs every time.
KNOWN = {
    "policy.yaml": [
        "defaults: [1]",
        "tiers: [1]",
        "tiers: {x: 1}",
        "tiers: {1: [a]}",
        "version: 1\n1: 2\nx: 3",
        "rules: [{id: x1, tier: 1, reason: r, match: {command: a, unless: 5}}]",
        "rules: {a: 1}",
        "rules: [{id: x1, tier: 1, reason: r, match: {bogus: 1, 7: 2}}]",
        "targets: {a: {7: 1, b: 2}}",
        "rules: [{id: x1, tier: 1, reason: r, match: {code_any: ['(']}}]",
        "paths: [1]",
        "rules: [1]",
    ],
    "config.yaml": [
        "1: x\nzz: y\n",
        "agents: [a]",
        "agents: {a: {env: [1]}}",
        "agents: {a: {command: x, env: {1: 2}}}",
        "agents: {a: {command: x, description: [1]}}",
        'agents: {"\\e": x}',
        "jobs: 1e400",
        "jobs: 99999999",
        'worktree_root: "a\\0b"',
        "log_cap_mb: -1",
        "agents: {a: {command: x, 7: 1, b: 2}}",
    ],
    "status.json": [
        '{"plan": "p", "id": "W", "usage": {"x": "1"}}',
        '{"plan": "p", "id": "W", "pid": -5}',
        '{"plan": "p", "id": "W", "red": [1]}',
        '{"plan": "p", "id": "W", "state": null}',
        '{"plan": "p", "id": "W", "iteration": 1e400}',
        '{"plan": "p", "id": "W", "version": true}',
    ],
    "journal.json": [
        '{"version": 1}',
        '{"version": 1, "plan": 1, "base": "", "base_start": "", "integration_branch": "", "worktree": ""}',
        '{"version": 1, "plan": "p", "base": "", "base_start": "", "integration_branch": "",'
        ' "worktree": "", "records": [{"id": "W", "branch": "b", "state": "S", "verdict": "NOPE"}]}',
        '{"version": 1, "plan": "p", "base": "", "base_start": "", "integration_branch": "", "worktree": "",'
        ' "current": {"id": 5}}',
        '{"version": 1, "plan": "p", "base": "", "base_start": "", '
        '"integration_branch": "", "worktree": "", "records": "x"}',
    ],
}


@pytest.mark.parametrize(("name", "text"), [(n, t) for n, texts in KNOWN.items() for t in texts])
def test_known_corruptions(tmp_path: Path, policy_cache: None, name: str, text: str) -> None:
    (tmp_path / ".boss").mkdir()
    path = tmp_path / (f".boss/{name}" if name.endswith(".yaml") else name)
    path.write_text(text)
    read: dict[str, Callable[[], Any]] = {
        "policy.yaml": lambda: policy_file.load(tmp_path),
        "config.yaml": lambda: load_config(tmp_path),
        "status.json": lambda: st.read(path),
        "journal.json": lambda: journal.load(path),
    }
    assert check(read[name], name) is None  # each is refused, by name
