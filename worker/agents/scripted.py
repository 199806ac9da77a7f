"""The built-in scripted agent: edits files as a script says, so demos and tests need no model.

The script is a fenced block in the worker's instructions (and so in CONTEXT.md):

    ```agent-script
    - write: {src/calc/add.py: "def add(a, b):\\n    return a + b\\n"}
    - replace: {src/calc/add.py: ["a + b", "b + a"]}
      sleep: 0.2
    ```

Step N runs on iteration N (`BOSS_ITERATION`); the last step repeats for later iterations.
A step may `write`, `append`, `replace` (old, new), `delete` paths (relative to the worktree),
`print` text, `sleep` seconds, `run` a bash command (unguarded), `shell` bash commands through
the worker's guard, as an agent CLI's shell tool does, and `exit` with a code. Run it as
`python -m worker.scripted_agent` in a worktree with the worker's environment (SPEC section 4).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from worker.autonomy import guard

SHELL_CALL = "scripted agent: shell: "  # one line a command put to the guard (ScriptedProfile.tool_calls)

FENCE = re.compile(r"```agent-script[^\n]*\n(.*?)```", re.DOTALL)


def load_script(text: str) -> list[dict[str, Any]]:
    """The steps of the first agent-script block in text (none when there is no block)."""
    match = FENCE.search(text)
    if not match:
        return []
    import yaml  # here, not at the top: the worker reads SHELL_CALL from this module, without PyYAML

    try:
        steps = yaml.safe_load(match.group(1)) or []
    except yaml.YAMLError as e:
        msg = f"agent-script is not YAML: {e}"
        raise ValueError(msg) from e
    if isinstance(steps, dict):
        steps = [steps]
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        msg = "agent-script must be a YAML list of steps"
        raise ValueError(msg)
    return steps


def _inside(root: Path, rel: str) -> Path:
    return root / rel


def apply_step(step: dict[str, Any], root: Path) -> int:
    """Carry out one step in root; the exit code the agent should end with."""
    for rel, content in (step.get("write") or {}).items():
        p = _inside(root, rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(str(content))
    for rel, content in (step.get("append") or {}).items():
        p = _inside(root, rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a") as f:
            f.write(str(content))
    for rel, (old, new) in (step.get("replace") or {}).items():
        p = _inside(root, rel)
        p.write_text(p.read_text().replace(str(old), str(new)))
    for rel in step.get("delete") or []:
        _inside(root, rel).unlink(missing_ok=True)
    if step.get("print"):
        print(step["print"], flush=True)
    if step.get("run"):
        subprocess.run(["bash", "-c", str(step["run"])], cwd=root, check=False)
    shell = step.get("shell")
    for command in [shell] if isinstance(shell, str) else shell or []:
        guarded_shell(str(command), root)
    if step.get("sleep"):
        time.sleep(float(step["sleep"]))
    return int(step.get("exit", 0))


def guarded_shell(command: str, root: Path) -> None:
    """Run one command with bash in root if the worker's guard allows it, as a CLI's shell tool
    is judged (a Bash hook call); blocked, or with no guard to ask, it does not run."""
    broker = os.environ.get(guard.SOCKET_ENV)
    shown = " ".join(command.splitlines())
    if not broker:  # fail closed: nobody to judge it
        print(f"scripted agent: not run (no guard: {guard.SOCKET_ENV} is not set): {shown}", flush=True)
        return
    print(f"{SHELL_CALL}{shown}", flush=True)
    payload = {"tool_name": "Bash", "tool_input": {"command": command}, "cwd": str(root)}
    outcome = guard.ask_broker(broker, json.dumps(payload))
    if outcome.code != guard.ALLOW:
        print(f"scripted agent: blocked: {outcome.stderr.strip()}", flush=True)
        return
    subprocess.run(["bash", "-c", command], cwd=root, check=False)


def main() -> int:
    """Run the step for this iteration from the script in $BOSS_CONTEXT."""
    context = os.environ.get("BOSS_CONTEXT", "")
    root = Path(os.environ.get("BOSS_WORKTREE") or Path.cwd())
    iteration = int(os.environ.get("BOSS_ITERATION", "1") or 1)
    try:
        steps = load_script(Path(context).read_text()) if context else []
    except (OSError, ValueError) as e:
        print(f"scripted agent: cannot read the script: {e}", file=sys.stderr)
        return 2
    if not steps:
        print("scripted agent: no agent-script block in the context; nothing to do")
        return 0
    step = steps[min(iteration, len(steps)) - 1]
    print(f"scripted agent: iteration {iteration}, step {min(iteration, len(steps))} of {len(steps)}")
    return apply_step(step, root)


if __name__ == "__main__":
    sys.exit(main())
