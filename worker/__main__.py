from __future__ import annotations

from worker.cli.entry import main

main()
