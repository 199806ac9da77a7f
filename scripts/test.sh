#!/usr/bin/env bash
# The project's one test command (the README's, and what .ci/run runs): lint, types, tests with
# a branch-coverage gate. Run it in an environment where `pip install '.[test]'` was done.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff"
ruff check boss worker tests scripts
ruff format --check boss worker tests scripts
echo "== mypy --strict (boss, worker)"
mypy
echo "== import contracts (import-linter; the rules are in pyproject.toml)"
# The clone's own source, not the installed copy (the same code, but this is what is reviewed).
PYTHONPATH="$PWD" lint-imports --no-cache --no-logo
echo "== pytest (with branch coverage)"
rm -f .coverage .coverage.*
export COVERAGE_RCFILE="$PWD/pyproject.toml"
# The measured processes that run inside a sandbox can write their coverage data only to a
# folder every sandbox lets them write (boss.core.sandbox, BOSS_SANDBOX_WRITABLE).
covdata="$PWD/.coverage-data"
rm -rf "$covdata" && mkdir -p "$covdata"
export COVERAGE_FILE="$covdata/.coverage"
export BOSS_SANDBOX_WRITABLE="$covdata${BOSS_SANDBOX_WRITABLE:+:$BOSS_SANDBOX_WRITABLE}"
# Tests run in parallel (pytest-xdist): most of the suite waits on subprocesses, servers and
# timers, not the CPU. Two workers on the 2-core CI machine: four were faster but their load broke
# the tests that bound a time (BOSS_TEST_WORKERS overrides the count).
python -m pytest -q -p no:cacheprovider -n "${BOSS_TEST_WORKERS:-2}" --dist loadgroup --durations=20 --cov --cov-branch --cov-report=term --cov-fail-under="${BOSS_COVERAGE_MIN:-90}" "$@"
