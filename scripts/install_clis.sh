#!/usr/bin/env bash
# Installs the real agent CLIs the contract tests run, at the versions pinned in
# tests/contract/package-lock.json (Claude Code, Codex, Gemini CLI, OpenCode, from npm) and
# AIDER_VERSION (Aider, from PyPI, into a virtual environment of its own: it pins many
# packages). Everything goes into a cache that outlives the clone, keyed by the pins, so a
# second run installs nothing (npm install, not npm ci: the lock lists only this platform's
# optional binaries, which npm ci refuses). Prints the folder that holds one executable per CLI.
#   usage: bash scripts/install_clis.sh            (BOSS_CLI_CACHE overrides the cache folder)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
lock="$here/tests/contract/package-lock.json"
AIDER_VERSION="0.86.2"
cache="${BOSS_CLI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boss-worker/clis}"
key="$(cat "$lock" "$here/tests/contract/package.json" | sha256sum | cut -c1-16)"
npm_dir="$cache/npm-$key"
aider_dir="$cache/aider-$AIDER_VERSION"
bin="$cache/bin-$key-aider-$AIDER_VERSION"
mkdir -p "$cache"

if [ ! -x "$npm_dir/node_modules/.bin/claude" ] || [ ! -f "$npm_dir/.complete" ]; then
  rm -rf "$npm_dir.tmp"
  mkdir -p "$npm_dir.tmp"
  cp "$here/tests/contract/package.json" "$lock" "$npm_dir.tmp/"
  (cd "$npm_dir.tmp" && npm install --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$npm_dir"
  mv "$npm_dir.tmp" "$npm_dir"
  touch "$npm_dir/.complete"
fi

if [ ! -f "$aider_dir/.complete" ]; then
  rm -rf "$aider_dir"
  python3 -m venv "$aider_dir"
  "$aider_dir/bin/python" -m pip install --quiet --disable-pip-version-check "aider-chat==$AIDER_VERSION" >&2
  touch "$aider_dir/.complete"
fi

mkdir -p "$bin"
for cli in claude codex gemini opencode; do
  ln -sfn "$npm_dir/node_modules/.bin/$cli" "$bin/$cli"
done
ln -sfn "$aider_dir/bin/aider" "$bin/aider"
echo "$bin"
