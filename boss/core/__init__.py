"""The core every part shares: the plan's files and formats (manifest, status, state log, journal, approvals,
config, paths) and the plumbing under them (git, processes, the sandbox, locks, YAML). It imports nothing
else of boss or worker.
"""
