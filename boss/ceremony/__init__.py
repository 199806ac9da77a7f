"""The merge ceremony: triage, integration tests, merging in dependency order, quarantine and review,
reports, and cleaning up after.
"""
