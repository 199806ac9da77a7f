"""The built-in profiles of the real agent CLIs, one module per CLI (see `worker.agents.registry`)."""
