"""Prefect tasks: thin wrappers of `sdft` library calls (retries, timeouts, logs). No logic lives here."""
