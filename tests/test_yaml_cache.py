"""The parsed-YAML cache workers read the manifest and config through, and the hot path that
keeps click and PyYAML out of `worker run PLAN ID`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import make_repo
from worker_helpers import make_plan, worker

from boss.core import yamlio
from boss.core.errors import InputError


def test_cache_is_written_used_and_ignored_when_the_text_changes(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("a: 1\nb: [x, y]\n")
    assert yamlio.load_file(path, cached=True) == {"a": 1, "b": ["x", "y"]}
    cache = yamlio.cache_path(path)
    assert not cache.exists()  # readers never write it
    yamlio.save_cache(path)
    assert cache.name == ".m.yaml.json"
    assert json.loads(cache.read_text()) == {"text": "a: 1\nb: [x, y]\n", "data": {"a": 1, "b": ["x", "y"]}}
    # The cache is what is read while the text is the same ...
    cache.write_text(json.dumps({"text": "a: 1\nb: [x, y]\n", "data": {"from": "cache"}}))
    assert yamlio.load_file(path, cached=True) == {"from": "cache"}
    # ... and any edit, even one of the same size and time, is seen at once.
    path.write_text("a: 2\nb: [x, y]\n")
    assert yamlio.load_file(path, cached=True) == {"a": 2, "b": ["x", "y"]}
    assert json.loads(cache.read_text())["data"] == {"from": "cache"}


@pytest.mark.parametrize("junk", ["", "{not json", "[1, 2]", '{"data": 5}'])
def test_a_broken_cache_is_ignored_and_replaced(tmp_path, junk):
    path = tmp_path / "m.yaml"
    path.write_text("a: 1\n")
    yamlio.cache_path(path).write_text(junk)
    assert yamlio.load_file(path, cached=True) == {"a": 1}
    yamlio.save_cache(path)
    assert json.loads(yamlio.cache_path(path).read_text())["data"] == {"a": 1}


def test_data_json_cannot_hold_is_never_cached(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("when: 2026-11-25\n1: one\n")
    yamlio.save_cache(path)
    first = yamlio.load_file(path, cached=True)
    assert str(first["when"]) == "2026-11-25" and first[1] == "one"
    assert not yamlio.cache_path(path).exists()
    path.write_text("ints: {1: one}\n")  # int keys would come back as strings
    yamlio.save_cache(path)
    assert yamlio.load_file(path, cached=True) == {"ints": {1: "one"}}
    assert not yamlio.cache_path(path).exists()


def test_errors_still_name_the_file_and_line(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("a: [1, 2\n")
    with pytest.raises(InputError, match=r"^shown\.yaml: line 1 invalid YAML"):
        yamlio.load_file(path, "shown.yaml", cached=True)
    with pytest.raises(InputError, match=r"missing\.yaml: cannot read"):
        yamlio.load_file(tmp_path / "missing.yaml", cached=True)


def test_a_cache_that_cannot_be_written_is_not_an_error(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("a: 1\n")
    yamlio.cache_path(path).mkdir()  # in its place: a folder (a read-only checkout fails alike)
    yamlio.save_cache(path)
    assert yamlio.load_file(path, cached=True) == {"a": 1}
    assert yamlio.cache_path(path).is_dir()
    assert not list(tmp_path.glob(".*.tmp"))


def test_worker_run_imports_neither_click_nor_yaml(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "r", {"README.md": "r\n"})
    monkeypatch.chdir(repo)
    (repo / ".boss").mkdir()
    (repo / ".boss/config.yaml").write_text("jobs: 2\n")
    paths, _ = make_plan(repo, [worker("W1")])  # renders, which keeps both parsed
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    res = subprocess.run([sys.executable, "-m", "worker", "run", "p", "W1"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in res.stderr.splitlines() if "import time:" in line}
    assert "boss.core.manifest" in imported and "worker.lifecycle.run" in imported
    assert not {"click", "yaml"} & imported
    # Errors on that path read as everywhere else: one line, the exit code of the family.
    res = subprocess.run([sys.executable, "-m", "worker", "run", "p", "NOPE"], cwd=repo,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 2
    assert res.stderr == "Error: plan p: no worker 'NOPE' (workers: W1)\n"
    assert yamlio.cache_path(paths.manifest).is_file()
    assert yamlio.cache_path(repo / ".boss/config.yaml").is_file()
