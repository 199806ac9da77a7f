"""`boss do` and `boss undo`: one agent, every gate of a worker, landed on the current branch.

A `boss do` is a plan like any other under `.boss/plans/` (one worker, W1), made from a task on
the command line or a one-section Markdown plan (`task.py`), with a rollback point recorded
before anything runs (`record.py`). Its worker runs as `worker run` would, followed live and
answering TIER 3 requests at the terminal when asked (`follow.py`), then lands through the merge
ceremony itself (`land.py`); `boss undo` takes the landing back while nothing else landed
since (`undo.py`).
"""
