"""boss: plans work into a manifest, renders the process files, and runs the merge ceremony."""

from __future__ import annotations

__version__ = "0.1.0"
