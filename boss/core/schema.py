"""The manifest's JSON Schema, generated from the model's own constants (SPEC section 3).

`manifests/manifest.schema.json` is this schema; a test keeps the file and the code in step.
Regenerate it with `python -m boss.core.schema > manifests/manifest.schema.json`. What a schema
cannot say (unique ids and branches, known dependencies, no cycles, valid Python regexes and
git branch names) only `boss validate` checks.
"""

from __future__ import annotations

import json
from typing import Any

from boss.core.manifest import (
    AGENT_RE,
    COMMIT_RE,
    COUNT_SETTINGS,
    GROUP_RE,
    ID_RE,
    NUMBER_SETTINGS,
    PLAN_ONLY_SETTINGS,
    SETTING_DEFAULTS,
    SLUG_RE,
    TOP_REQUIRED,
    VERSION,
    WORKER_REQUIRED,
)

_TEXT = {"type": ["string", "null"]}
_REQUIRED_TEXT = {"type": "string", "pattern": r"\S"}


def _anchored(rx: str) -> str:
    return f"^{rx}$"


def _one_or_many(item: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "anyOf": [{"type": "string"}, {"type": "array", "items": item}, {"type": "null"}],
    }


def _settings(worker: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for key, default in SETTING_DEFAULTS.items():
        if worker and key in PLAN_ONLY_SETTINGS:
            continue
        if key == "agent":
            props[key] = {"type": "string", "pattern": _anchored(AGENT_RE.pattern)}
        elif key in COUNT_SETTINGS:
            props[key] = {"type": "integer", "minimum": 1, "maximum": 100}
        elif key in NUMBER_SETTINGS:
            unit = "minutes" if key == "max_minutes" else "US dollars"
            props[key] = {"type": "number", "minimum": 0, "description": f"{unit}; 0: no cap"}
        elif key == "max_tokens":
            props[key] = {"type": "integer", "minimum": 0, "description": "tokens; 0: no cap"}
        elif isinstance(default, bool):
            props[key] = {"type": "boolean", "description": "the test's sandbox keeps the network"}
        else:
            props[key] = {"type": "integer", "minimum": 0, "description": "seconds; 0: no limit"}
        props[key]["default"] = default
    return props


def _worker() -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": {"type": "string", "pattern": _anchored(ID_RE.pattern)},
        "title": _REQUIRED_TEXT,
        "branch": {**_TEXT, "description": "default: feat/<id lowercased>-<slug of title>"},
        "scope": {
            "description": "Python regexes searched in repo-relative POSIX paths",
            "anyOf": [
                {"type": "string", "pattern": r"\S"},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            ],
        },
        "depends_on": _one_or_many({"type": "string"}, "ids of the workers whose work this one builds on"),
        "test": {**_REQUIRED_TEXT, "description": "acceptance test: fails before, passes after"},
        "instructions": _TEXT,
        "write_test": {"type": "boolean", "description": "the agent writes the test first"},
        "group": {
            "type": ["string", "null"],
            "pattern": f"^({GROUP_RE.pattern})?$",
            "description": "workers of one group are merged together and judged as a unit",
        },
        **_settings(worker=True),
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(WORKER_REQUIRED),
        "properties": props,
    }


def build() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of manifest.yaml version 1."""
    props: dict[str, Any] = {
        "version": {"const": VERSION},
        "plan": {"type": "string", "pattern": _anchored(SLUG_RE.pattern)},
        "task": _TEXT,
        "base": {**_REQUIRED_TEXT, "description": "the branch workers start from"},
        "base_commit": {
            "type": ["string", "null"],
            "pattern": f"^({COMMIT_RE.pattern})?$",
            "description": "recorded by boss plan",
        },
        "integration_test": {**_TEXT, "description": "run after each merge in the ceremony"},
        "setup": {**_TEXT, "description": "run once in each new worktree"},
        "copy": _one_or_many({"type": "string", "minLength": 1}, "untracked files copied into each worktree"),
        "defaults": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": _settings(),
        },
        "workers": {"type": "array", "minItems": 1, "items": _worker()},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"boss work manifest (version {VERSION})",
        "description": "The work manifest of boss: .boss/plans/<plan>/manifest.yaml",
        "type": "object",
        "additionalProperties": False,
        "required": list(TOP_REQUIRED),
        "properties": props,
    }


def dumps() -> str:
    """The schema as the text of manifests/manifest.schema.json."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(dumps(), end="")
