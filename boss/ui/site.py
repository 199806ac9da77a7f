"""What one `boss ui` serves: one plan of one repository, its launch token and sessions, and the
jobs it started."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path

from boss.core.config import Config, config_path, load_config
from boss.core.manifest import Manifest, load
from boss.core.paths import PlanPaths, plans_dir
from boss.ui import watch
from boss.ui.jobs import Jobs


@dataclass
class Site:
    """What the application serves: one plan of one repository."""

    repo: Path
    plan: str
    token: str  # the launch token of the printed URL: exchanged once for a session, then dead
    port: int = 0
    host: str = "127.0.0.1"
    used: bool = False  # the launch token was exchanged
    sessions: dict[str, str] = field(default_factory=dict)  # session id (the cookie) -> its form token
    jobs: Jobs = field(init=False)
    stopping: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    _opened: tuple[object, tuple[PlanPaths, Manifest, Config]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.jobs = Jobs(self.repo)

    @property
    def authority(self) -> str:
        """host:port as the URL and the Host header say it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def cookie(self) -> str:
        return f"boss_ui_{self.port}"  # cookies ignore ports: one UI's never answers another's

    def open(self) -> tuple[PlanPaths, Manifest, Config]:
        """The plan as `open_plan` reads it, read again only when its manifest or the config changed."""
        key = (
            watch.stat(config_path(self.repo)),
            watch.stat(plans_dir(self.repo) / self.plan / "manifest.yaml"),
        )
        with self._lock:  # pages and event streams open it from several threads
            if self._opened is None or self._opened[0] != key:
                config = load_config(self.repo)
                paths = PlanPaths.of(self.repo, self.plan, config.worktree_root)
                self._opened = (key, (paths, load(paths.manifest), config))
            return self._opened[1]
