"""The worker's public face: all that boss's command line may import of the worker.

The import contracts (pyproject.toml, `boss-through-api`) forbid boss any other worker module.
"""

from __future__ import annotations

from worker.agents.planning import planning_agent
from worker.agents.registry import check_agents
from worker.lifecycle.run import run_worker
from worker.lifecycle.signals import install_stop_signals

__all__ = ["check_agents", "install_stop_signals", "planning_agent", "run_worker"]
