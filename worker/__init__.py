"""worker: runs one agent in one git worktree under mechanical gates."""

from __future__ import annotations
