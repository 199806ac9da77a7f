from __future__ import annotations

from boss.cli.main import main

main()
