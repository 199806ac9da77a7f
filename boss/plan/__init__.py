"""Planning: from a Markdown plan, an agent or a directory split to a checked manifest, and its rendering
(run_workers.sh, CONTEXT.md, plan.md).
"""
