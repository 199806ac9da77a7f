from __future__ import annotations

from worker.entry import main

main()
