"""Attack class: code in the repository that boss's own commands would import.

`python -m worker` (run_workers.sh, `boss do`) started in the repository puts the current folder
first on sys.path, so a `worker.py` committed there (merged work, or a hostile clone) would run
in place of the installed worker, outside any sandbox. Defence expected: boss starts its own
programs with `python -P`, which leaves the current folder out.
"""

from __future__ import annotations

import subprocess

from conftest import make_repo
from worker_helpers import make_plan, worker

from boss.core import status as st

PLANTED = "import pathlib\npathlib.Path('PWNED').write_text('the repository ran its own worker.py')\n"


def test_a_worker_py_in_the_repository_never_runs_in_place_of_the_worker(tmp_path):
    repo = make_repo(tmp_path / "repo", {"worker.py": PLANTED, "worker/__main__.py": PLANTED,
                                         "worker/__init__.py": ""})  # fmt: skip
    paths, _ = make_plan(repo, [worker("W1")])
    res = subprocess.run(
        ["bash", str(paths.run_script)], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (repo / "PWNED").exists()
    assert st.read(paths.status("W1")).state == st.SUCCESS
