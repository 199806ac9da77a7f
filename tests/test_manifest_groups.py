"""The manifest's `group` field: validation (one line naming file, worker and field), the merge
order that keeps a group's members together, the JSON Schema, and plan.md and CONTEXT.md."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from conftest import git

from boss.cli.main import cli
from boss.core import manifest as mf
from boss.core import schema
from boss.core.config import load_config
from boss.core.errors import ManifestError
from boss.core.paths import PlanPaths
from boss.plan.render import render_plan


def w(wid: str, **fields) -> dict:
    return {"id": wid, "title": f"Work {wid}", "scope": [f"^src/{wid.lower()}/"], "test": "true", **fields}


def raw(*workers: dict) -> dict:
    return {"version": 1, "plan": "p", "base": "main", "workers": list(workers)}


BAD = {
    "bad name": (raw(w("A", group="a b"), w("B")),
                 "m.yaml: worker A field group: must be a name matching [A-Za-z][A-Za-z0-9_-]{0,31}"),
    "not a string": (raw(w("A", group=["g"])), "m.yaml: worker A field group: must be a string"),
    "a worker between members": (
        raw(w("A", group="g"), w("X", depends_on="A"), w("B", group="g", depends_on="X")),
        "m.yaml: worker A field group: group g cannot be merged one member after another: "
        "group g -> X -> group g (each depends on the next); put the workers between them in the "
        "group, or drop a dependency",
    ),
    "two groups waiting for each other": (
        raw(w("A", group="g"), w("B", group="h", depends_on="A"), w("C", group="h"),
            w("D", group="g", depends_on="C")),
        "m.yaml: worker A field group: group g cannot be merged one member after another: "
        "group g -> group h -> group g (each depends on the next); put the workers between them "
        "in the group, or drop a dependency",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_group_rule_gives_one_line_naming_file_worker_and_field(case):
    data, message = BAD[case]
    with pytest.raises(ManifestError) as e:
        mf.from_dict(data, "m.yaml")
    assert str(e.value) == message


@pytest.mark.parametrize("case", ["bad name", "not a string"])
def test_the_schema_rejects_a_bad_group_name(case):
    assert not jsonschema.Draft202012Validator(schema.build()).is_valid(BAD[case][0])


def test_a_valid_group_passes_code_and_schema_and_round_trips(tmp_path):
    data = raw(
        w("A", group="pair"), w("B", group="pair", depends_on="A"), w("C", group=None), w("D", group="")
    )
    assert jsonschema.Draft202012Validator(schema.build()).is_valid(data)
    m = mf.from_dict(data, "m.yaml")
    assert [x.group for x in m.workers] == ["pair", "pair", "", ""]
    mf.save(m, tmp_path / "m.yaml")
    again = mf.load(tmp_path / "m.yaml")
    assert again == m and "group" not in mf.to_dict(m)["workers"][2]
    assert m.groups() == {"pair": [m.worker("A"), m.worker("B")]}
    assert [x.id for x in m.group_of("B")] == ["A", "B"] and m.group_of("C") == [m.worker("C")]
    assert mf.scope_warnings(m) == []


def test_a_group_of_one_is_a_warning_not_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("m.yaml").write_text(yaml.safe_dump(raw(w("A", group="pair"), w("B", group="piar"))))
    res = CliRunner().invoke(cli, ["validate", "m.yaml", "--json"], catch_exceptions=False)
    assert res.exit_code == 0
    assert json.loads(res.stdout)["warnings"] == [
        "worker A field group: 'pair' is its group alone, which changes nothing; is the name "
        "misspelt in another worker?",
        "worker B field group: 'piar' is its group alone, which changes nothing; is the name "
        "misspelt in another worker?",
    ]


def test_the_order_keeps_a_group_together_after_what_it_depends_on():
    m = mf.from_dict(
        raw(w("A", group="g"), w("X", depends_on="A"), w("B"), w("C", group="g", depends_on="B"), w("E")),
        "m.yaml",
    )
    # g waits for B (C depends on it), then A and C one after the other; X after A
    assert [x.id for x in m.order()] == ["B", "A", "C", "X", "E"]
    assert m.ancestors("X") == {"A"} and m.ancestors("C") == {"B"}
    assert [[x.id for x in wave] for wave in m.waves()] == [["A", "B", "E"], ["X", "C"]]
    plain = mf.from_dict(raw(w("A"), w("X", depends_on="A"), w("B"), w("C", depends_on="B")), "m.yaml")
    assert [x.id for x in plain.order()] == ["A", "X", "B", "C"]  # no group: as before


def test_plan_md_and_context_md_show_the_group(repo):
    data = raw(w("S", group="pair"), w("T", group="pair", depends_on="S"), w("U"))
    data["base_commit"] = git(repo, "rev-parse", "HEAD")
    m = mf.from_dict(data, "manifest.yaml")
    paths = PlanPaths.of(repo, m.plan)
    mf.save(m, paths.manifest)
    render_plan(paths, m, load_config(repo))
    plan_md = paths.plan_md.read_text()
    assert "## Groups" in plan_md and "| pair | S, T |" in plan_md
    assert 'subgraph g1["group pair"]' in plan_md and "a box holds the" in plan_md
    s_md, u_md = paths.context("S").read_text(), paths.context("U").read_text()
    assert "## You land together with T" in s_md and "**T: Work T**" in s_md
    assert "## You land together with S" in paths.context("T").read_text()
    assert "land together" not in u_md
    plain = mf.from_dict({**data, "workers": [w("U")]}, "manifest.yaml")
    render_plan(paths, plain, load_config(repo), force=True)
    assert "## Groups" not in paths.plan_md.read_text()


def test_a_markdown_plan_sets_a_group_with_a_field():
    from boss.plan import markdown_plan

    text = (
        "# Sign\nSign with SHA-512.\n\n"
        "## SRC: Signer\n- scope: ^src/\n- test: pytest tests -q\n- group: sha512\n\nChange the signer.\n\n"
        "## TESTS: Its tests\n- scope: ^tests/\n- test: pytest tests -q\n- depends on: SRC\n- group: sha512\n\n"
        "Update the tests.\n"
    )
    data = markdown_plan.parse(text, "PLAN.md")
    data.update(base="main", base_commit="0" * 40)
    m = mf.from_dict(data, "PLAN.md")
    assert [(x.id, x.group) for x in m.workers] == [("SRC", "sha512"), ("TESTS", "sha512")]
    assert m.worker("SRC").instructions.strip() == "Change the signer."
