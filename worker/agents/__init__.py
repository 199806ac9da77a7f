"""The agent CLIs: each profile (how a CLI is started, how its output and usage are read), their registry,
and the per-CLI configuration that makes a CLI call the guard.
"""
