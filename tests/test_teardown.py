"""A worker that stops leaves its cached workflows as suspended coroutines; Python's garbage
collector later closes them wherever it happens to run, possibly inside another workflow's
activation (sdk-python#494). Tether's workflows (deployments, sessions with the agent's process
running, tasks) then do nothing: no command of theirs may land in the other workflow's history.
It was seen once in the suite: a session whose history held a deployment's patch marker, and
failed to replay."""

from __future__ import annotations

import gc
import sys
import uuid
from pathlib import Path

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.support.deploy import deploy_rig
from tests.support.helpers import FakeForge
from tests.support.sessions import running_team
from tether import client as api
from tether.config import AgentRunner
from tether.contracts import DeployState, RunRequest, ShellCheck, TaskSpec


@workflow.defn(sandboxed=False)
class CollectsGarbage:
    """Runs the garbage collector inside its own activation."""

    @workflow.run
    async def run(self) -> int:
        return gc.collect()


async def test_a_stopped_workers_workflows_leave_no_command_in_another_workflow(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    # What earlier tests in this process left is collected now, outside any workflow (the suite
    # runs in several processes: which files came before differs); then only the workflow below
    # collects, inside its activation, what this test's stopped workers leave.
    gc.collect()
    gc.disable()
    try:
        async with (
            deploy_rig(client, fresh_db, tmp_path / "deploy") as rig,
            running_team(client, fresh_db, tmp_path / "team", forge) as team,
        ):
            # Queued, waiting for the founder: suspended in the stopping worker's cache ...
            waiting = [await rig.request("main") for _ in range(3)]
            assert all(v.state == DeployState.QUEUED for v in waiting)
            # ... with an open session and a claimed task, and an agent's process running.
            agent = team.agent("coder")
            task = TaskSpec(id=f"gc-{agent}", title="t", checks=[ShellCheck(command="true")])
            await api.create_task(client, team.task_queue, task)
            await api.claim_task(client, task.id, agent)
            runner = next(a for a in team.config.agents if a.name == agent)
            runner.runtime = "command"
            runner.run = AgentRunner(command=[sys.executable, "-c", "import time; time.sleep(30)"])
            await api.run_agent(client, team.task_queue, agent, "command", RunRequest())
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
    events = [e async for e in handle.fetch_history_events()]
    foreign = [
        f"{EventType.Name(e.event_type)} {_what(e)}"
        for e in events
        if e.event_type
        in (
            EventType.EVENT_TYPE_MARKER_RECORDED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_TIMER_STARTED,
        )
    ]
    assert foreign == [], foreign


def _what(event: object) -> str:
    """The marker's patch id or the activity's type: whose command it was."""
    marker = getattr(event, "marker_recorded_event_attributes", None)
    if marker is not None and marker.marker_name:
        payload = marker.details.get("patch_data")
        return str(payload.payloads[0].data[:120] if payload and payload.payloads else "")
    activity = getattr(event, "activity_task_scheduled_event_attributes", None)
    if activity is not None and activity.activity_type.name:
        return f"{activity.activity_type.name} {activity.input.payloads[0].data[:200]!r}"
    return ""
