"""What a failed activity says, in one line: the words a workflow puts in evidence, a blocker or
the founder's inbox."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError


def cause_text(err: ActivityError) -> str:
    """The message of the failure behind an activity error (its ApplicationError's own words)."""
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)
