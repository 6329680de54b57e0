"""A check may keep retrying for a while before it fails (a deploy rolling out, say)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.client import Client, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import worker as tether_worker
from tests.support import keys
from tests.support.helpers import HttpService
from tether import client as api
from tether import constants
from tether.config import TetherConfig
from tether.contracts import HttpCheck, SubmitInput, SubmitResult, TaskSpec
from tether.store import Store
from workflows.task import TaskWorkflow


async def test_check_passes_once_the_service_recovers_within_the_window(
    client: Client, worker: Worker, http_service: HttpService, task_id: str
) -> None:
    http_service.respond(503)
    check = HttpCheck(
        url=f"{http_service.url}/health", retry_for_seconds=30, retry_interval_seconds=0.5
    )
    await api.create_task(
        client, worker.task_queue, TaskSpec(id=task_id, title="t", checks=[check])
    )
    await api.claim_task(client, task_id, "devops")

    async def recover() -> None:
        await asyncio.sleep(2)
        http_service.respond(200)

    result, _ = await asyncio.gather(api.submit_task(client, task_id, "devops", None), recover())
    assert result.done
    assert result.evidence[0].attempts > 1 and result.evidence[0].passed


async def test_a_ten_minute_window_fails_after_ten_minutes_not_before(
    time_skipping_env: WorkflowEnvironment, store: Store, http_service: HttpService
) -> None:
    env = time_skipping_env
    http_service.respond(502)
    task_id = f"t-{uuid.uuid4().hex[:10]}"
    check = HttpCheck(
        url=f"{http_service.url}/health", retry_for_seconds=600, retry_interval_seconds=60
    )
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    async with tether_worker.build_worker(env.client, queue, store, TetherConfig(), keys.KEYS):
        await api.create_task(env.client, queue, TaskSpec(id=task_id, title="t", checks=[check]))
        await api.claim_task(env.client, task_id, "devops")
        handle = env.client.get_workflow_handle(constants.task_workflow_id(task_id))
        before = http_service.requests
        update = await handle.start_update(
            TaskWorkflow.submit,
            SubmitInput(agent="devops"),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
        await env.sleep(timedelta(minutes=11))
        result: SubmitResult = await update.result()
    assert not result.done
    [evidence] = result.evidence
    # One attempt at the start, then one a minute until the ten minutes are up.
    assert evidence.attempts == 11
    assert http_service.requests - before == evidence.attempts
    assert "expected HTTP 200, got 502" in evidence.summary
