"""A scripted planner for tests: a command agent profile that answers from canned manifests.

Usage (as `.boss/config.yaml` runs it): python scripted_planner.py MODE, with BOSS_PROMPT set
and PLANNER_STATE naming a counter file; each call records its prompt and working directory
next to that file, and tries to plant a file where it runs (it must not reach the user's code).

Modes: wrong-then-right (right only once the prompt carries the first answer's errors),
always-wrong, sleep (never answers), crash (exit 3), bare (right, without a fence).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

WRONG = """\
version: 1
plan: login
colour: red
workers:
  - id: W1
    title: Auth
    scope: '^src/auth/('
    test: pytest tests/auth -q
    depends_on: [W2]
  - id: W2
    title: UI
    scope: ^src/ui/
    test: pytest tests/ui -q
    depends_on: [W1]
"""

RIGHT = """\
version: 1
plan: login
task: Add a login flow
integration_test: pytest -q
workers:
  - id: W1
    title: Auth
    scope: ['^src/auth/', '^tests/auth/']
    test: pytest tests/auth -q
    write_test: true
    instructions: |
      Add login() and logout() to src/auth/session.py.
  - id: W2
    title: UI
    scope: ^src/ui/
    test: pytest tests/ui -q
    depends_on: [W1]
    instructions: Add a login form in src/ui/login.py.
"""


def main() -> int:
    mode = sys.argv[1]
    state = Path(os.environ["PLANNER_STATE"])
    n = int(state.read_text()) + 1 if state.exists() else 1
    state.write_text(str(n))
    prompt = Path(os.environ["BOSS_PROMPT"]).read_text()
    (state.parent / f"prompt-{n}.md").write_text(prompt)
    (state.parent / f"cwd-{n}").write_text(os.getcwd())
    Path("planted-by-planner.txt").write_text("the planner tried to write here\n")
    print("thinking about the task...", file=sys.stderr)
    if mode == "sleep":
        time.sleep(60)
    if mode == "crash":
        print("planner: out of credits")
        return 3
    if mode == "bare":
        print(RIGHT)
        return 0
    fixed = n > 1 and "dependency cycle W1 -> W2 -> W1" in prompt and "field colour" in prompt
    answer = RIGHT if mode == "wrong-then-right" and fixed else WRONG
    print(f"Here is the manifest (attempt {n}):\n\n```yaml\n{answer}```\n\nDone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
