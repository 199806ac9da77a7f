"""Tiered autonomy: the shell parser, the command classifier, the policy and its file, and the guard hook
every agent calls before a tool runs, with its judgement.
"""
