"""A worker that stops leaves its cached workflows as suspended coroutines; Python's garbage
collector later closes them wherever it happens to run, possibly inside another workflow's
activation (sdk-python#494). Tether's workflows then do nothing: no command of theirs may land
in the other workflow's history (seen once in the suite as a session whose history held a
deployment's patch marker, and failed to replay)."""

from __future__ import annotations

import gc
import uuid
from pathlib import Path

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.support.deploy import deploy_rig
from tether.contracts import DeployState


@workflow.defn(sandboxed=False)
class CollectsGarbage:
    """Runs the garbage collector inside its own activation."""

    @workflow.run
    async def run(self) -> int:
        return gc.collect()


async def test_a_stopped_workers_deployments_leave_no_command_in_another_workflow(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    gc.disable()  # only the workflow below collects, inside its activation
    try:
        async with deploy_rig(client, fresh_db, tmp_path) as rig:
            # Queued, waiting for the founder: suspended in the stopping worker's cache.
            waiting = [await rig.request("main") for _ in range(3)]
            assert all(v.state == DeployState.QUEUED for v in waiting)
        queue = f"gc-{uuid.uuid4().hex[:8]}"
        async with Worker(
            client,
            task_queue=queue,
            workflows=[CollectsGarbage],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            handle = await client.start_workflow(
                CollectsGarbage.run, id=f"gc-{queue}", task_queue=queue
            )
            await handle.result()
    finally:
        gc.enable()
    kinds = [e.event_type async for e in handle.fetch_history_events()]
    foreign = [
        EventType.Name(k)
        for k in kinds
        if k
        in (
            EventType.EVENT_TYPE_MARKER_RECORDED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_TIMER_STARTED,
        )
    ]
    assert foreign == [], foreign
