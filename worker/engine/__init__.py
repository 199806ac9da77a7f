"""Engines that run a plan's workers off this machine (README, "Running on a Dask cluster")."""
