"""Activity retry policies: bounded everywhere, and final on the errors that retrying cannot fix.

The anti-loop rule applies to Tether's own side effects too: no activity retries without a
limit, and auth, permission and invalid-input failures (`tether.errors.ESCALATE`) are not
retried at all — the workflow turns them into a blocker, evidence or an inbox item.
"""

from __future__ import annotations

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
