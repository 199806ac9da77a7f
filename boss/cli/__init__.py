"""The `boss` command line (one module per command), and `boss demo`. Thin: each command calls planning, the
ceremony or the core.
"""
