"""The worker's public face: all that boss's command line may import of the worker.

The import contracts (pyproject.toml, `boss-through-api`) forbid boss any other worker module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.agents.planning import planning_agent
from worker.agents.registry import check_agents
from worker.lifecycle.run import run_worker
from worker.lifecycle.signals import install_stop_signals

if TYPE_CHECKING:
    from boss.core.config import Config
    from boss.core.manifest import Manifest
    from boss.core.paths import PlanPaths
    from boss.core.testrun import Remote

__all__ = ["check_agents", "cluster_slots", "install_stop_signals", "planning_agent", "run_worker"]


def cluster_slots(
    paths: PlanPaths, m: Manifest, config: Config, scheduler: str, remote: str, slots: int
) -> Remote:
    """The ceremony's test slots on the Dask cluster at scheduler (`boss merge --engine dask`);
    `slots` 0: merge_slots, else the nodes' threads. Imports Dask only when called."""
    from worker.engine.ceremony_slots import ClusterSlots

    return ClusterSlots(paths, m, config, scheduler, remote, slots)
