"""`boss ui`: the local web dashboard (README, "boss ui").

A layer above the ceremony and the plan, beside boss.cli (which imports it lazily, inside the
`ui` command only): it reads what the CLI reads and acts through the same functions (or runs
`boss merge` / `boss retry` themselves), never writing files of its own. It needs the optional
extra `boss-worker[ui]` (Starlette and uvicorn); nothing else in boss imports it.
"""
