"""The policy format: the default policy's examples, project overrides, validation errors, cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import write_files

from boss.core.errors import ConfigError
from worker.autonomy.classify import classify
from worker.autonomy.policy import DEFAULT_POLICY, Part
from worker.autonomy.policy_file import example_context, example_problems, load_policy


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def judge(policy, command: str) -> int:
    cwd = Path(example_context().worktree)
    return classify(command, cwd, cwd, policy, context=example_context()).tier


def test_every_default_rule_matches_its_examples() -> None:
    policy = load_policy()
    assert example_problems(policy) == []


def test_every_default_rule_has_examples_both_ways() -> None:
    policy = load_policy()
    assert len(policy.rules) > 80
    for rule in policy.rules:
        assert rule.examples[0], f"rule {rule.id} has no match examples"
        if not rule.fallback:
            assert rule.examples[1], f"rule {rule.id} has no not_match examples"
    assert {1, 2, 3} == {r.tier for r in policy.rules}
    assert set(policy.tiers) == {1, 2, 3}


def test_a_project_declares_its_own_commands_and_overrides_by_id(repo: Path) -> None:
    write_files(
        repo,
        {
            ".boss/policy.yaml": """
version: 1
rules:
  - id: deploy-check
    tier: 1
    reason: our dry-run deploy check
    match: {prefix: [make, deploy-check]}
    examples: {match: ["make deploy-check"], not_match: ["make deploy"]}
  - id: net-egress
    reason: network egress (our wording)
    match:
      command: [curl, wget]
      unless: {operands_any: ["http://localhost*"]}
    examples: {match: ["curl https://x"], not_match: ["curl http://localhost:8000/x"]}
  - id: curl-localhost
    tier: 1
    reason: talks to the local dev server
    match: {command: [curl], operands_any: ["http://localhost*"]}
  - id: eval
    disabled: true
paths:
  writable: [/tmp/ourproject-*]
defaults:
  unknown_command: 2
"""
        },
    )
    before = load_policy()
    policy = load_policy(repo)
    assert judge(before, "make deploy-check") == 2
    assert judge(policy, "make deploy-check") == 1  # the project's rule wins over build-tools
    assert judge(policy, "make deploy") == 2
    assert judge(policy, "curl http://localhost:8000/health") == 1
    assert judge(policy, "curl https://example.com") == 3
    assert policy.rule("net-egress").reason == "network egress (our wording)"  # type: ignore[union-attr]
    assert policy.rule("net-egress").tier == 3  # type: ignore[union-attr]
    assert judge(before, "eval echo") == 3
    assert judge(policy, "eval echo") == 2  # eval disabled; eval is now an unknown command: tier 2
    assert judge(policy, "touch /tmp/ourproject-1/x") == 1
    assert judge(policy, "touch /tmp/other/x") == 3
    assert policy.sources == (str(DEFAULT_POLICY), str(repo / ".boss/policy.yaml"))


def test_extra_files_extend_and_targets_merge(tmp_path: Path) -> None:
    extra = tmp_path / "overlay.yaml"
    extra.write_text("rules:\n  - {id: mytool, tier: 1, reason: ours, match: {command: [mytool]}}\n"
                     "targets:\n  mytool: {options: {--out: write}}\n")  # fmt: skip
    policy = load_policy(None, [extra, tmp_path / "missing.yaml"])
    assert judge(policy, "mytool run") == 1
    assert judge(policy, "mytool run --out /etc/x") == 3
    assert judge(policy, "mytool run --out=new.txt") == 1
    assert "rm" in policy.targets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules: [{id: x, tier: 4, reason: r, match: {command: [a]}}]",
            "rule x: field tier: must be 1, 2 or 3",
        ),
        (
            "rules: [{id: x, tier: 1, reason: r, match: {commnd: [a]}}]",
            "rule x: field match.commnd: unknown condition",
        ),
        ("rules: [{id: x, tier: 1, reason: r}]", "rule x: field match: is required"),
        ("rules: [{id: X Y, tier: 1, reason: r, match: {command: [a]}}]", "field id: must be a slug"),
        ("rules: [{id: x, tier: 1, match: {command: [a]}}]", "rule x: field reason"),
        (
            "rules: [{id: x, tier: 1, reason: r, match: {command: [a]}, colour: red}]",
            "rule x: field colour: unknown key",
        ),
        ("rules: [{id: x, tier: 1, reason: r, match: {effect: [teleport]}}]", "unknown effect 'teleport'"),
        (
            "rules: [{id: x, tier: 1, reason: r, match: {code_any: ['(']}}]",
            "field match.code_any: invalid regex",
        ),
        (
            "rules: [{id: x, tier: 1, reason: r, match: {command: [a]}}, {id: x, tier: 1, reason: r, match: {command: [b]}}]",
            "rule x: field id: is used twice",
        ),
        ("colour: red", "field colour: unknown key"),
        ("version: 2", "field version: must be 1"),
        ("defaults: {unknown_command: 0}", "field defaults.unknown_command"),
        ("targets: {rm: {operands: smash}}", "field targets.rm.operands: must be one of"),
        (
            "rules: [{id: x, tier: 1, reason: r, match: {command: [a]}, examples: {match: [b]}}]",
            "rule x: field examples.match: the rule does not match 'b'",
        ),
        (
            "rules: [{id: x, tier: 1, reason: r, match: {command: [a]}, examples: {not_match: [a]}}]",
            "rule x: field examples.not_match: the rule matches 'a'",
        ),
        (
            "rules: [{id: curl-anything, tier: 1, reason: r, match: {command: [curl]}, examples: {match: [ls]}}]",
            "rule curl-anything: field examples.match",
        ),
        (
            "rules: [{id: net-egress, match: {command: [wget]}}]",
            "rule net-egress: field examples.match: the rule does not match 'curl https://example.com'",
        ),
        ("rules: not-a-list", "field rules: must be a list"),
        (": : :", "invalid YAML"),
    ],
)
def test_policy_errors_name_the_file_the_rule_and_the_field(repo: Path, text: str, expected: str) -> None:
    (repo / ".boss").mkdir()
    (repo / ".boss/policy.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        load_policy(repo)
    assert str(repo / ".boss/policy.yaml") in str(err.value)
    assert expected in str(err.value)


def test_parsed_policies_are_cached_and_refreshed_when_a_file_changes(repo: Path, tmp_path: Path) -> None:
    own = repo / ".boss/policy.yaml"
    own.parent.mkdir()
    own.write_text("rules: [{id: mine, tier: 1, reason: ours, match: {command: [mytool]}}]\n")
    first = load_policy(repo)
    cached = list((tmp_path / "cache" / "boss").glob("policy-*.json"))
    assert len(cached) == 1
    assert load_policy(repo).rule("mine") is not None
    own.write_text("rules: [{id: mine, tier: 3, reason: changed, match: {command: [mytool]}}]\n")
    stamp = time.time() + 5
    os.utime(own, (stamp, stamp))
    assert load_policy(repo).rule("mine").tier == 3  # type: ignore[union-attr]
    assert first.rule("mine").tier == 1  # type: ignore[union-attr]


def test_a_broken_cache_is_ignored(repo: Path, tmp_path: Path) -> None:
    load_policy(repo)
    for path in (tmp_path / "cache" / "boss").glob("policy-*.json"):
        path.write_text("{not json")
    assert load_policy(repo).rule("net-egress") is not None


def test_part_flags_and_operands() -> None:
    part = Part(("rm", "-rf", "--force=yes", "x", "--", "-y"), "rm ...")
    assert {"-rf", "-r", "-f", "--force"} <= part.flags
    assert part.operands == ("x", "-y")


def test_unknown_commands_take_the_default_tier() -> None:
    policy = load_policy()
    assert judge(policy, "frobnicate --all") == 3
    cwd = Path(example_context().worktree)
    d = classify("frobnicate", cwd, cwd, policy, context=example_context())
    assert d.rule == "unknown-command"
    assert "frobnicate is not in the policy" in d.reason
