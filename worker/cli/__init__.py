"""The `worker` command line (run, pool, skip, states, progress, classify, guard). Thin."""
