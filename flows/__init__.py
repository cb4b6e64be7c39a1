"""Prefect flows composing the tasks in `tasks/`."""

import os

# A flow run without a server (`make demo`, `python -m flows.pipeline`) starts Prefect's temporary server, whose
# first start migrates a fresh database: on 2 busy cores that took longer than Prefect's 20-second default, and the
# demo died before its first stage ("Timed out while attempting to connect to ephemeral Prefect API server").
# Set before any Prefect import reads its settings; an explicit value in the environment wins.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
