"""The manifest: model, every validation rule of SPEC section 3 (directly and via `boss validate`),
the dependency graph, scope overlaps, branch names as git judges them, and the JSON Schema."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from boss.cli.main import cli
from boss.core import manifest as mf
from boss.core import schema
from boss.core.errors import ManifestError
from boss.core.git import branch_name_problem
from boss.core.paths import PlanPaths

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "manifests").glob("*.yaml"))


def raw_manifest(*workers: dict, **top) -> dict:
    return {
        "version": 1,
        "plan": "p",
        "base": "main",
        "workers": list(workers) or [w("W1")],
        **top,
    }


def w(wid: str, **fields) -> dict:
    return {
        "id": wid,
        "title": f"Work {wid}",
        "scope": [f"^src/{str(wid).lower()}/"],
        "test": "true",
        **fields,
    }


def problems(raw, source="m.yaml") -> list[str]:
    with pytest.raises(ManifestError) as e:
        mf.from_dict(raw, source)
    assert str(e.value) == "\n".join(e.value.problems)
    return e.value.problems


# Each bad input, the exact problem line it must give (file, worker, field, problem).
BAD = {
    "unknown top key": (
        raw_manifest(colour="red"),
        "m.yaml: field colour: unknown key (allowed: version, plan, task, base, base_commit, "
        "integration_test, setup, copy, defaults, workers)",
    ),
    "unknown worker key": (
        raw_manifest(w("W1", scpoe="^x/")),
        "m.yaml: worker W1 field scpoe: unknown key (allowed: id, title, branch, scope, depends_on, "
        "test, instructions, write_test, group, agent, max_iterations, max_strategies, agent_timeout, "
        "test_timeout, stall_timeout, test_network, rate_limit_timeout, max_cost_usd, max_tokens, max_minutes)",
    ),
    "unknown defaults key": (
        raw_manifest(defaults={"retries": 3}),
        "m.yaml: defaults field retries: unknown key (allowed: agent, max_iterations, "
        "max_strategies, agent_timeout, test_timeout, stall_timeout, test_network, rate_limit_timeout, "
        "max_cost_usd, max_tokens, max_minutes, budget_usd)",
    ),
    "missing version": (
        {k: v for k, v in raw_manifest().items() if k != "version"},
        "m.yaml: field version: required field is missing",
    ),
    "missing base": (raw_manifest(base=""), "m.yaml: field base: required field is missing"),
    "missing workers": (raw_manifest() | {"workers": []}, "m.yaml: field workers: required field is missing"),
    "missing test": (
        raw_manifest({"id": "W1", "title": "t", "scope": "^a/"}),
        "m.yaml: worker W1 field test: required field is missing",
    ),
    "blank title": (
        raw_manifest(w("W1", title="  ")),
        "m.yaml: worker W1 field title: required field is missing",
    ),
    "missing scope": (
        raw_manifest(w("W1", scope=[])),
        "m.yaml: worker W1 field scope: required field is missing",
    ),
    "missing id": (
        raw_manifest({"title": "t", "scope": "^a/", "test": "true"}),
        "m.yaml: workers[0] field id: required field is missing",
    ),
    "duplicate ids": (
        raw_manifest(w("W1"), w("W1", branch="other")),
        "m.yaml: worker W1 field id: duplicate id (ids must be unique in the plan)",
    ),
    "unknown dependency": (
        raw_manifest(w("W1", depends_on=["W9"])),
        "m.yaml: worker W1 field depends_on: names no worker W9 (workers: W1)",
    ),
    "self dependency": (
        raw_manifest(w("W1", depends_on="W1")),
        "m.yaml: worker W1 field depends_on: a worker cannot depend on itself",
    ),
    "cycle": (
        raw_manifest(w("W1", depends_on=["W2"]), w("W2", depends_on=["W3"]), w("W3", depends_on=["W1"])),
        "m.yaml: worker W1 field depends_on: dependency cycle W1 -> W2 -> W3 -> W1 (each depends on the next)",
    ),
    "invalid regex": (
        raw_manifest(w("W1", scope=["^src/(", "^ok/"])),
        "m.yaml: worker W1 field scope: invalid regex '^src/(': missing ), unterminated subpattern at position 5",
    ),
    "empty regex": (
        raw_manifest(w("W1", scope=["^a/", ""])),
        "m.yaml: worker W1 field scope: empty regex (write '^' to allow every path)",
    ),
    "scope not strings": (
        raw_manifest(w("W1", scope=[1])),
        "m.yaml: worker W1 field scope: must be a regex or a list of regexes",
    ),
    "invalid branch": (
        raw_manifest(w("W1", branch="feat/a..b")),
        "m.yaml: worker W1 field branch: invalid branch name 'feat/a..b': it contains '..' "
        "(see git check-ref-format)",
    ),
    "shared branch": (
        raw_manifest(w("W1", branch="feat/x"), w("W2", branch="feat/x")),
        "m.yaml: worker W2 field branch: branch 'feat/x' is also worker W1's",
    ),
    "branch is the base": (
        raw_manifest(w("W1", branch="main")),
        "m.yaml: worker W1 field branch: 'main' is the plan's base branch",
    ),
    "bad slug": (
        raw_manifest(plan="Auth UI"),
        "m.yaml: field plan: bad slug 'Auth UI': must match [a-z0-9][a-z0-9-]{0,62}",
    ),
    "bad id": (
        raw_manifest(w("1st")),
        "m.yaml: worker 1st field id: bad id: must match [A-Za-z][A-Za-z0-9_-]{0,31}",
    ),
    "id with a newline": (
        raw_manifest(w("W\n1")),
        "m.yaml: worker 'W\\n1' field id: bad id: must match [A-Za-z][A-Za-z0-9_-]{0,31}",
    ),
    "id not a string": (raw_manifest(w(7)), "m.yaml: workers[0] field id: must be a string"),
    "bad version": (
        raw_manifest(version=2),
        "m.yaml: field version: unsupported version 2 (this tool reads version 1)",
    ),
    "bad base": (
        raw_manifest(base="a b"),
        "m.yaml: field base: invalid branch name 'a b': it contains ' '",
    ),
    "bad base_commit": (
        raw_manifest(base_commit="HEAD"),
        "m.yaml: field base_commit: must be a commit hash (7 to 64 lowercase hex digits)",
    ),
    "copy outside": (
        raw_manifest(copy=["../secret"]),
        "m.yaml: field copy: '../secret' must be a path inside the repository",
    ),
    "bad count": (
        raw_manifest(w("W1", max_iterations=0)),
        "m.yaml: worker W1 field max_iterations: must be a whole number from 1 to 100",
    ),
    "bad timeout": (
        raw_manifest(defaults={"agent_timeout": "10m"}),
        "m.yaml: defaults field agent_timeout: must be a whole number of seconds >= 0 (0: no limit)",
    ),
    "rate_limit_timeout not seconds": (
        raw_manifest(w("W1", rate_limit_timeout=-1)),
        "m.yaml: worker W1 field rate_limit_timeout: must be a whole number of seconds >= 0 (0: no limit)",
    ),
    "max_cost_usd not money": (
        raw_manifest(w("W1", max_cost_usd="lots")),
        "m.yaml: worker W1 field max_cost_usd: must be a number of US dollars >= 0 (0: no cap)",
    ),
    "max_minutes negative": (
        raw_manifest(w("W1", max_minutes=-1)),
        "m.yaml: worker W1 field max_minutes: must be a number of minutes >= 0 (0: no cap)",
    ),
    "max_tokens a fraction": (
        raw_manifest(w("W1", max_tokens=1.5)),
        "m.yaml: worker W1 field max_tokens: must be a whole number of tokens >= 0 (0: no cap)",
    ),
    "budget_usd on a worker": (
        raw_manifest(w("W1", budget_usd=5)),
        "m.yaml: worker W1 field budget_usd: unknown key (allowed: id, title, branch, scope, depends_on, "
        "test, instructions, write_test, group, agent, max_iterations, max_strategies, agent_timeout, "
        "test_timeout, stall_timeout, test_network, rate_limit_timeout, max_cost_usd, max_tokens, max_minutes)",
    ),
    "budget_usd a string": (
        raw_manifest(defaults={"budget_usd": "5$"}),
        "m.yaml: defaults field budget_usd: must be a number of US dollars >= 0 (0: no cap)",
    ),
    "bad agent": (
        raw_manifest(w("W1", agent="my agent")),
        "m.yaml: worker W1 field agent: must be an agent profile name (letters, digits, ._-)",
    ),
    "bad write_test": (
        raw_manifest(w("W1", write_test="yes")),
        "m.yaml: worker W1 field write_test: must be true or false",
    ),
    "title not a string": (
        raw_manifest(w("W1", title=["a"])),
        "m.yaml: worker W1 field title: must be a string",
    ),
    "worker not a mapping": (
        raw_manifest("W1"),
        "m.yaml: workers[0]: must be a mapping with id, title, scope and test",
    ),
    "top level not a mapping": (
        ["W1"],
        "m.yaml: top level: must be a mapping with version, plan, base and workers",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_rule_gives_one_line_naming_file_worker_and_field(case):
    raw, expected = BAD[case]
    assert problems(raw) == [expected]


def test_every_problem_is_reported_at_once():
    raw = raw_manifest(w("W1", scpoe="x", depends_on=["W9"]), w("W2", branch="a b"), colour=1)
    found = problems(raw)
    assert [p.split(": ")[1] for p in found] == [
        "field colour",
        "worker W1 field scpoe",
        "worker W1 field depends_on",
        "worker W2 field branch",
    ]
    assert all("\n" not in p for p in found)


@pytest.fixture
def write_plan(repo):
    def write(raw, plan="p") -> Path:
        path = PlanPaths.of(repo, plan).manifest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


@pytest.mark.parametrize("case", sorted(BAD))
def test_boss_validate_exits_2_with_one_error_line_per_problem(write_plan, case):
    raw, expected = BAD[case]
    write_plan(raw)
    res = CliRunner().invoke(cli, ["validate"], catch_exceptions=False)
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert lines == ["Error: " + expected.replace("m.yaml", ".boss/plans/p/manifest.yaml", 1)]
    assert "Traceback" not in res.output


def test_boss_validate_json_lists_problems_and_a_real_run_names_the_cycle(write_plan, repo):
    write_plan(BAD["cycle"][0])
    res = CliRunner().invoke(cli, ["validate", "--json"], catch_exceptions=False)
    assert res.exit_code == 2
    assert json.loads(res.stdout)["problems"][0].endswith("W1 -> W2 -> W3 -> W1 (each depends on the next)")
    proc = subprocess.run(["boss", "validate", "p"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "Error: .boss/plans/p/manifest.yaml: worker W1 field depends_on: dependency cycle"
    )


def test_boss_validate_reports_invalid_yaml_with_its_line(write_plan):
    path = write_plan(raw_manifest())
    path.write_text("version: 1\nworkers: [\n")
    res = CliRunner().invoke(cli, ["validate"], catch_exceptions=False)
    assert res.exit_code == 2
    assert res.stderr.startswith("Error: .boss/plans/p/manifest.yaml: line 3 invalid YAML")


def test_boss_validate_accepts_a_manifest_path_and_prints_warnings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("m.yaml").write_text(yaml.safe_dump(raw_manifest(w("W1", scope="^src/"), w("W2", scope="^src/ui/"))))
    res = CliRunner().invoke(cli, ["validate", "m.yaml"], catch_exceptions=False)
    assert res.exit_code == 0
    assert res.stdout == "m.yaml: valid: plan p, 2 worker(s) in 1 wave(s).\n"
    assert res.stderr.startswith(
        "Warning: workers W1 and W2 may run at the same time and their scopes overlap"
    )
    res = CliRunner().invoke(cli, ["validate", "m.yaml", "--json"], catch_exceptions=False)
    data = json.loads(res.stdout)
    assert data["valid"] is True and data["waves"] == [["W1", "W2"]] and len(data["warnings"]) == 1


def test_defaults_branches_settings_and_round_trip(tmp_path):
    raw = raw_manifest(
        w("W1", title="Auth: login & logout!", agent="codex", max_iterations=3),
        w("W2", depends_on="W1", write_test=True, branch="feat/custom"),
        defaults={"agent": "scripted", "test_timeout": 30},
        copy=".env",
        task=None,
    )
    m = mf.from_dict(raw, "m.yaml")
    w1, w2 = m.workers
    assert w1.branch == "feat/w1-auth-login-logout"
    assert w2.branch == "feat/custom" and w2.depends_on == ("W1",) and w2.write_test
    assert m.copy == (".env",)
    assert m.settings(w1) == mf.Settings("codex", 3, 2, 1800, 30, 600)
    assert m.settings(w2).agent == "scripted"
    assert mf.from_dict(mf.to_dict(m), "again") == m
    mf.save(m, tmp_path / "m.yaml")
    assert mf.load(tmp_path / "m.yaml") == m
    assert (tmp_path / "m.yaml").read_text().startswith("# boss work manifest (version 1)")


def test_hostile_strings_survive_save_and_load(tmp_path):
    evil = "$(touch x) `id`; rm -rf / ' \" \\ \n\tünïcødé ☃ \n trailing  \n"
    raw = raw_manifest(w("W1", title=evil, instructions=evil, test=evil, scope=[evil]), task=evil, setup=evil)
    m = mf.from_dict(raw, "m.yaml")
    mf.save(m, tmp_path / "m.yaml")
    back = mf.load(tmp_path / "m.yaml")
    assert back == m
    assert back.workers[0].instructions == evil and back.workers[0].scope == (evil,)


def test_load_names_the_file_relative_to_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.yaml").write_text(yaml.safe_dump(raw_manifest(colour=1)))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as e:
        mf.load(tmp_path / "sub" / "m.yaml")
    assert e.value.problems[0].startswith("sub/m.yaml: field colour")


def diamond() -> mf.Manifest:
    return mf.from_dict(
        raw_manifest(
            w("D", depends_on=["B", "C"]),
            w("B", depends_on=["A"]),
            w("C", depends_on=["A"]),
            w("A"),
            w("E"),
        ),
        "m.yaml",
    )


def test_order_waves_ancestors_dependents_concurrent():
    m = diamond()
    assert [x.id for x in m.order()] == ["A", "B", "C", "D", "E"]
    assert [[x.id for x in wave] for wave in m.waves()] == [["A", "E"], ["B", "C"], ["D"]]
    assert m.ancestors("D") == {"A", "B", "C"} and m.ancestors("A") == set()
    assert m.dependents("A") == {"B", "C", "D"} and m.dependents("D") == set()
    assert m.concurrent("B", "C") and m.concurrent("E", "D")
    assert not m.concurrent("A", "D") and not m.concurrent("D", "A") and not m.concurrent("B", "B")
    assert m.worker("C").id == "C"
    with pytest.raises(ManifestError, match=r"plan p: no worker 'Z' \(workers: D, B, C, A, E\)"):
        m.ancestors("Z")


def test_graph_of_a_long_chain_is_fast_and_not_recursive():
    n = 3000
    workers = [w(f"W{i}", depends_on=[f"W{i - 1}"] if i else []) for i in range(n)]
    start = time.process_time()  # this process's CPU: other tests beside it (xdist) do not count
    m = mf.from_dict(raw_manifest(*reversed(workers)), "m.yaml")
    assert m.order()[0].id == "W0" and m.order()[-1].id == f"W{n - 1}"
    assert len(m.waves()) == n
    assert not mf.scope_overlaps(m)
    assert time.process_time() - start < 3


def test_a_long_cycle_is_found_without_recursion():
    n = 2000
    workers = [w(f"W{i}", depends_on=[f"W{(i + 1) % n}"]) for i in range(n)]
    found = problems(raw_manifest(*workers))
    assert found == [
        "m.yaml: worker W0 field depends_on: dependency cycle "
        + " -> ".join(f"W{i}" for i in [*range(n), 0])
        + " (each depends on the next)"
    ]


def overlaps(*scopes, deps=None, tracked=()):
    workers = [w(f"W{i + 1}", scope=list(s)) for i, s in enumerate(scopes)]
    for wid, dep in (deps or {}).items():
        next(x for x in workers if x["id"] == wid)["depends_on"] = [dep]
    return mf.scope_overlaps(mf.from_dict(raw_manifest(*workers), "m.yaml"), tracked)


def test_scope_overlaps():
    assert overlaps(["^src/"], ["^src/auth/"]) == [("W1", "W2", "src/auth/")]
    assert overlaps(["^src/a"], ["^src/b"]) == []
    assert overlaps(["^src/"], ["^src/auth/"], deps={"W2": "W1"}) == []
    assert overlaps(["^src/auth/"], ["^src/auth/"], ["^docs/"]) == [("W1", "W2", "src/auth/")]
    assert overlaps(["^README\\.md$"], ["^README"]) == [("W1", "W2", "README.md")]
    assert overlaps(["^.*"], ["^lib/"]) == [("W1", "W2", "lib/")]
    assert overlaps(["^"], ["^"]) == [("W1", "W2", "(every path)")]
    # Regexes other than plain prefixes are judged on the repository's files.
    assert overlaps(["\\.py$"], ["^src/"]) == []
    assert overlaps(["\\.py$"], ["^src/"], tracked=["README.md", "src/a.py"]) == [("W1", "W2", "src/a.py")]
    assert overlaps(["^src/.*\\.py$"], ["^src/.*\\.js$"], tracked=["src/a.py", "src/b.js"]) == []


def test_a_scope_with_a_literal_backslash_is_a_warning():
    """One backslash too many in YAML (`'^src/calc\\\\.py$'`) gives a regex that matches nothing."""
    m = mf.from_dict(
        raw_manifest(w("W1", scope=["^src/calc\\\\.py$", "^docs/"]), w("W2", scope=["\\.md$"])), "m.yaml"
    )
    [warning] = mf.scope_warnings(m)
    assert warning.startswith("worker W1 field scope: '^src/calc\\\\\\\\.py$' matches a literal backslash")


def test_scope_overlaps_of_200_workers_is_fast():
    workers = [w(f"W{i}", scope=[f"^pkg/m{i}/", f"^tests/m{i}/", f"m{i}\\.md$"]) for i in range(200)]
    workers.append(w("ALL", scope="^pkg/"))
    m = mf.from_dict(raw_manifest(*workers), "m.yaml")
    tracked = [f"pkg/m{i}/f{j}.py" for i in range(200) for j in range(20)]
    start = time.process_time()  # this process's CPU: other tests beside it (xdist) do not count
    found = mf.scope_overlaps(m, tracked)
    assert time.process_time() - start < 1
    assert len(found) == 200 and all(b == "ALL" for _, b, _ in found)
    assert found[0] == ("W0", "ALL", "pkg/m0/f0.py")


BRANCH_NAMES = [
    "main", "feat/w1-auth", "HEAD", "@", "a@b", "a@{b", "@{-1}", "-x", "x-", "a/.b", "a/b.lock",
    "a.lock/b", "a..b", "a/", "/a", "a//b", "a.", "a b", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b",
    "a\\b", "a\tb", "a\x7fb", "é/ü", "feat/$(touch${IFS}x)", "a;b", "a'b", 'a"b', "a`b`", ".a", "a/b/",
    "refs/heads/x", "a.lock", "lock", "a{b", "a}b", "@a", "a@", "a/@/b", "", "a!b", "a#b", "..", ".",
    "a/..", "x/HEAD", "HEAD/x", "a\\", "feat/x.y", "a/-b", "a/b.", "x.lock.y", "☃",
]  # fmt: skip


@pytest.mark.parametrize("name", BRANCH_NAMES)
def test_branch_names_are_judged_as_git_check_ref_format_does(name, tmp_path):
    proc = subprocess.run(["git", "check-ref-format", "--branch", name], cwd=tmp_path, capture_output=True)
    assert (branch_name_problem(name) is None) == (proc.returncode == 0), name


def test_slugify_and_default_branch():
    assert mf.slugify("  Add a Login flow!  ") == "add-a-login-flow"
    assert mf.slugify("★★★") == "plan"
    assert len(mf.slugify("x" * 100)) == 40
    assert mf.default_branch("W1", "Auth module") == "feat/w1-auth-module"


def test_examples_validate_with_the_code_and_the_schema():
    assert len(EXAMPLES) >= 2
    checker = jsonschema.Draft202012Validator(
        json.loads((ROOT / "manifests/manifest.schema.json").read_text())
    )
    for path in EXAMPLES:
        raw = yaml.safe_load(path.read_text())
        checker.validate(raw)
        m = mf.from_dict(raw, str(path))
        assert m.plan == path.stem and len(m.workers) >= 3
        assert mf.scope_overlaps(m) == [], path


def test_schema_file_is_generated_from_the_model():
    assert (ROOT / "manifests/manifest.schema.json").read_text() == schema.dumps(), (
        "regenerate it: python -m boss.core.schema > manifests/manifest.schema.json"
    )
    built = schema.build()
    jsonschema.Draft202012Validator.check_schema(built)
    assert tuple(built["properties"]) == mf.TOP_KEYS
    assert tuple(built["properties"]["workers"]["items"]["properties"]) == mf.WORKER_KEYS
    assert tuple(built["properties"]["defaults"]["properties"]) == tuple(mf.SETTING_DEFAULTS)


def schema_valid(raw) -> bool:
    return jsonschema.Draft202012Validator(schema.build()).is_valid(raw)


def code_valid(raw) -> bool:
    try:
        mf.from_dict(raw, "m.yaml")
    except ManifestError:
        return False
    return True


# What only the code can judge: references, uniqueness, cycles, Python regexes, git's rules.
CODE_ONLY = {
    "duplicate ids", "unknown dependency", "self dependency", "cycle", "invalid regex", "invalid branch",
    "shared branch", "branch is the base", "bad base", "empty regex", "copy outside",
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(set(BAD) - CODE_ONLY))
def test_schema_rejects_what_the_code_rejects(case):
    assert not schema_valid(BAD[case][0])


def test_schema_and_code_accept_the_same_optional_forms():
    base = raw_manifest(w("W1"))
    variants = [
        {"task": None, "setup": None, "copy": None, "defaults": None},
        {"copy": "", "base_commit": ""},
        {"copy": [".env", "config/local.yaml"], "base_commit": "0123abc"},
    ]
    worker_variants = [
        {"branch": None, "instructions": None, "depends_on": None},
        {"scope": "^a/", "depends_on": ""},
        {"write_test": False, "agent_timeout": 0, "stall_timeout": 5},
    ]
    for top in variants:
        raw = {**copy.deepcopy(base), **top}
        assert schema_valid(raw) and code_valid(raw), top
    for extra in worker_variants:
        raw = raw_manifest(w("W1", **extra))
        assert schema_valid(raw) and code_valid(raw), extra
