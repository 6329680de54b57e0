"""Running a typed check from a workflow: the task's verification and a deployment's health
checks use the same code, so a check means the same thing everywhere."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.tasks import TaskActivities
    from tether import constants
    from tether.contracts import Check, CheckEvidence, RunCheckInput
    from workflows import retry
    from workflows.failures import cause_text


async def verify(
    owner: str, index: int, check: Check, created_at: datetime | None
) -> CheckEvidence:
    """Run one check, re-running a failing one until its retry window closes. A check that
    cannot run at all (worker lost, bug) is failed evidence with the reason, never a workflow
    stuck retrying."""
    deadline = workflow.now() + timedelta(seconds=check.retry_for_seconds)
    interval = timedelta(seconds=check.retry_interval_seconds)
    long_running = check.kind in ("shell", "pytest")
    attempts = 0
    while True:
        attempts += 1
        try:
            evidence = await workflow.execute_activity_method(
                TaskActivities.run_check,
                RunCheckInput(task_id=owner, index=index, check=check, task_created_at=created_at),
                start_to_close_timeout=timedelta(seconds=check.timeout_seconds)
                + constants.CHECK_ACTIVITY_MARGIN,
                heartbeat_timeout=constants.CHECK_HEARTBEAT_TIMEOUT if long_running else None,
                retry_policy=retry.bounded(constants.CHECK_ACTIVITY_MAX_ATTEMPTS),
            )
        except ActivityError as err:
            cause = cause_text(err)
            evidence = CheckEvidence(
                index=index,
                name=check.label(index),
                kind=check.kind,
                passed=False,
                summary=f"the check could not run: {cause}",
                started_at=workflow.now(),
                error=cause,
            )
        evidence = evidence.model_copy(update={"attempts": attempts})
        left = deadline - workflow.now()
        if evidence.passed or left <= timedelta(0):
            return evidence
        # The last attempt falls on the deadline itself, so the whole window is used.
        await workflow.sleep(min(interval, left))
