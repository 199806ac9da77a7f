"""Where errors become messages and exit codes, for both CLIs and the worker's hot path.

Nothing here imports click: `worker run PLAN ID`, which run_workers.sh starts once per worker,
goes through `guarded` without paying for click's import (worker/cli/entry.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from boss.core.errors import BossError, ManifestError


def say(line: str) -> None:
    """One line on stderr."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def report_error(err: BossError) -> None:
    """Print an expected error as `Error:` lines on stderr."""
    lines = err.problems if isinstance(err, ManifestError) else [str(err)]
    for line in lines:
        say(f"Error: {line}")


def _trace_file() -> Path:
    """Where an internal error's full trace goes: the repo's .boss/ when there is one."""
    import tempfile  # only on the rare path of an internal error

    here = Path.cwd()
    for d in (here, *here.parents):
        if (d / ".boss").is_dir():
            return d / ".boss" / f"crash-{time.strftime('%Y%m%d-%H%M%S')}.log"
    return Path(tempfile.gettempdir()) / f"boss-crash-{time.strftime('%Y%m%d-%H%M%S')}.log"


def report_internal(e: Exception) -> None:
    """An unexpected exception: one line for the person, the full trace in a file."""
    import traceback

    path = _trace_file()
    try:
        path.write_text(traceback.format_exc())
        where = f"the full trace is in {path}"
    except OSError:
        where = "the trace could not be saved"
    say(f"Error: internal error ({type(e).__name__}: {e}); {where}. Please report it.")


def outcome(command: Callable[[], int]) -> int:
    """Run a command and return its exit code; errors are reported as the CLIs report them."""
    try:
        return command()
    except KeyboardInterrupt:
        say("Interrupted.")
        return 130
    except BossError as e:
        report_error(e)
        return e.exit_code
    except Exception as e:
        report_internal(e)
        return 1


def guarded(command: Callable[[], int]) -> NoReturn:
    """Run a command and exit with its code (see outcome)."""
    sys.exit(outcome(command))
