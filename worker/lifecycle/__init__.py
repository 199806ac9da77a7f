"""One worker's life: its worktree, the red and green gates, the agent/test loop with strategy shifts, the
blocker report, its status and the pool run_workers.sh starts.
"""
