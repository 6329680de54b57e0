"""Activity retries encode the anti-loop rule: bounded attempts, and auth / permission /
invalid-input failures are final at once (escalated, never retried). On the real dev server."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from activities.escalation import InvalidInput, escalating
from tether import errors
from workflows import retry

ATTEMPTS: dict[str, int] = {}


@activity.defn
@escalating
async def flaky(kind: str) -> str:
    key = f"{activity.info().workflow_id}"
    ATTEMPTS[key] = activity.info().attempt
    if kind == "permission":
        raise PermissionError(13, "Permission denied", "/srv/repo/.git/index.lock")
    if kind == "invalid":
        raise InvalidInput("repository 'nope' is not in tether.toml")
    if kind == "auth":
        raise ApplicationError("github was rejected (401)", type=errors.CREDENTIAL_REJECTED)
    raise ConnectionResetError("the server went away")  # transient: retried, but bounded


@workflow.defn(sandboxed=False)
class RetryProbe:
    @workflow.run
    async def run(self, kind: str) -> str:
        result: str = await workflow.execute_activity(
            flaky,
            kind,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=retry.bounded(4, initial_seconds=0.05, maximum_seconds=0.1),
        )
        return result


@pytest.mark.parametrize(
    ("kind", "attempts", "error_type"),
    [
        ("permission", 1, errors.PERMISSION_DENIED),
        ("invalid", 1, errors.INVALID_INPUT),
        ("auth", 1, errors.CREDENTIAL_REJECTED),
        ("transient", 4, "ConnectionResetError"),
    ],
)
async def test_final_errors_escalate_at_once_and_the_rest_stop_at_the_limit(
    client: Client, kind: str, attempts: int, error_type: str
) -> None:
    queue = f"retry-{uuid.uuid4().hex[:8]}"
    workflow_id = f"retry-probe-{kind}-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[RetryProbe], activities=[flaky]):
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(RetryProbe.run, kind, id=workflow_id, task_queue=queue)
    assert ATTEMPTS[workflow_id] == attempts
    cause = failed.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == error_type


def test_every_tether_activity_escalates_and_every_policy_is_bounded() -> None:
    import inspect

    from activities.sessions import SessionActivities
    from activities.tasks import TaskActivities

    found = 0
    for cls in (SessionActivities, TaskActivities):
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            if hasattr(fn, "__temporal_activity_definition"):
                found += 1
                assert getattr(fn, "__wrapped__", None) is not None, f"{name} is not escalating"
    assert found >= 15
    for policy in (retry.QUICK, retry.STORE, retry.bounded(20)):
        assert policy.maximum_attempts > 0
        assert set(errors.ESCALATE) <= set(policy.non_retryable_error_types or [])
