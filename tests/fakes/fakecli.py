#!/usr/bin/env python3
"""Run a fake agent CLI: `fakecli.py NAME ARGS...` behaves as the CLI NAME would.

The executables in tests/fakes/bin (claude, codex, aider, gemini, opencode) are one-line shims
that exec this file with $BOSS_PYTHON (the worker sets it to its own interpreter, so `boss`
and `worker` are importable). Put tests/fakes/bin first on PATH to use them.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

NAMES = ("claude", "codex", "aider", "gemini", "opencode")


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in NAMES:
        sys.stderr.write(f"usage: fakecli.py {{{','.join(NAMES)}}} ARGS...\n")
        return 2
    module = importlib.import_module(f"fake_{sys.argv[1]}")
    try:
        return int(module.main(sys.argv[2:]))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
