"""Prefect flows composing the tasks in `tasks/`."""

import os

# A flow run without a server (`make demo`, `python -m flows.pipeline`) starts Prefect's temporary server, whose
# first start migrates a fresh database: on an idle 2-core machine that took 23 s, over Prefect's 20-second default,
# and a fresh clone's demo died before its first stage ("Timed out while attempting to connect to ephemeral ...").
# Set before any Prefect import reads its settings; an explicit value in the environment wins.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
