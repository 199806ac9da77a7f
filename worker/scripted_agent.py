"""`python -m worker.scripted_agent`: the scripted agent's command, as the built-in profile runs
it and as a project's own command profiles may name it (the agent is worker.agents.scripted)."""

from __future__ import annotations

import sys

from worker.agents.scripted import main

if __name__ == "__main__":
    sys.exit(main())
