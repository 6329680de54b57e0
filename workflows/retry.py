"""Activity retry policies: bounded everywhere, and final on the errors that retrying cannot fix.

The anti-loop rule applies to Tether's own side effects too: no activity retries without a
limit, and auth, permission and invalid-input failures (`tether.errors.ESCALATE`) are not
retried at all — the workflow turns them into a blocker, evidence or an inbox item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy

from tether import errors


def bounded(
    attempts: int, initial_seconds: float = 1.0, maximum_seconds: float = 30.0
) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=initial_seconds),
        maximum_interval=timedelta(seconds=maximum_seconds),
        maximum_attempts=attempts,
        non_retryable_error_types=list(errors.ESCALATE),
    )


# Reads and probes: a few quick attempts, then the workflow says what could not be read.
QUICK = bounded(3)
# Writes to PostgreSQL: ride out a short outage, then give up (the next write catches up).
STORE = bounded(10)


@dataclass(frozen=True)
class Preset:
    """How long one attempt may take and how it is retried: the activity options a workflow
    picks by what the activity does, instead of timeout literals at each call."""

    timeout: timedelta
    policy: RetryPolicy


# One PostgreSQL write (a row, an audit entry, an inbox item cleared).
WRITE = Preset(timedelta(seconds=30), STORE)
# The founder's inbox: the row, then the start of its webhook delivery.
NOTIFY = Preset(timedelta(seconds=60), STORE)
# A quick read: the agent's setup, whether it holds a task.
READ = Preset(timedelta(seconds=30), QUICK)
# Probes and plans that ask other systems: credentials, a ref resolved to a commit, a stale base.
PROBE = Preset(timedelta(seconds=60), QUICK)
# Ground truth and the artifact test: git repositories and the forge, which can be slow.
SYNC = Preset(timedelta(seconds=120), QUICK)
# A read the workflow cannot go on without (the running commit, for the stale-base guard): it
# rides out an outage like a write.
MUST_READ = Preset(timedelta(seconds=60), STORE)
# The task's read model: more patient than one write, since every transition waits for it.
READ_MODEL = Preset(timedelta(seconds=30), bounded(20))
# A read-model write by local activity: short, since the workflow task (and the answer to the
# update that made the change) waits for it; a failure falls back to what the caller does.
LOCAL_WRITE = Preset(timedelta(seconds=5), bounded(2, maximum_seconds=1))
