from __future__ import annotations

from boss.cli import main

main()
