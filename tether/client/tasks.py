"""Tasks from the client: create, claim, submit, and the founder's actions (signed where a
governor holds the task)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from tether import constants
from tether.client.calls import Refused, T, ask, through_outages
from tether.contracts import (
    TERMINAL_STATES,
    ClaimInput,
    FounderActionInput,
    FounderOrder,
    SubmitInput,
    SubmitResult,
    TaskInput,
    TaskRecord,
    TaskSpec,
    TaskState,
    TaskView,
)
from tether.errors import TetherError
from workflows.task import TaskWorkflow


async def _closed_status(client: Client, task_id: str) -> str | None:
    """'completed', 'terminated', ... for a task whose workflow has ended; None if unknown."""
    try:
        described = await _handle(client, task_id).describe()
    except RPCError:
        return None
    status = described.status
    return status.name.lower() if status is not None else None


def _handle(client: Client, task_id: str) -> WorkflowHandle[TaskWorkflow, object]:
    return client.get_workflow_handle_for(TaskWorkflow.run, constants.task_workflow_id(task_id))


def _task_call(client: Client, task_id: str, call: Awaitable[T]) -> Awaitable[T]:
    async def not_found() -> TetherError:
        closed = await _closed_status(client, task_id)
        if closed:
            return Refused(f"task {task_id} is closed ({closed}); nothing changed")
        return TetherError(f"no open task {task_id!r}; `tether task list` shows the tasks")

    return ask(call, f"task {task_id}", not_found, _handle(client, task_id))


async def create_task(client: Client, task_queue: str, spec: TaskSpec) -> TaskView:
    """Start the task's workflow and answer its view once the workflow holds it, in one round
    trip (update-with-start). The read model follows within about one write (`wait_recorded`)."""
    start = WithStartWorkflowOperation(
        TaskWorkflow.run,
        TaskInput(spec=spec),
        id=constants.task_workflow_id(spec.id),
        task_queue=task_queue,
        # A task id names one task forever, even after it is done or cancelled.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        # As the workflow keeps them: it upserts only what changes.
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(constants.SA_TASK, spec.id),
                SearchAttributePair(constants.SA_STATE, TaskState.OPEN.value),
                *(
                    [SearchAttributePair(constants.SA_AGENT, spec.assignee)]
                    if spec.assignee
                    else []
                ),
            ]
        ),
        static_summary=f"Task {spec.id}: {spec.title}",
        static_details=_details(spec),
    )
    try:
        return await _task_call(
            client,
            spec.id,
            client.execute_update_with_start_workflow(
                TaskWorkflow.opened, start_workflow_operation=start
            ),
        )
    except WorkflowAlreadyStartedError as exc:
        raise Refused(f"task {spec.id!r} already exists; choose another id") from exc


async def wait_recorded(client: Client, task_id: str) -> TaskView:
    """Once every transition of the task so far is in PostgreSQL (the read model is written
    behind the workflow): for a script that reads `tether task list` right after a change."""
    return await _task_call(
        client, task_id, _handle(client, task_id).execute_update(TaskWorkflow.sync)
    )


async def task_record(client: Client, task_id: str, recorded: TaskRecord | None) -> TaskRecord:
    """The task exactly as its workflow has it: the read model's record, with what the workflow
    has not written there yet. A closed workflow wrote everything before closing."""
    if recorded is not None and recorded.task.state in TERMINAL_STATES:
        return recorded
    handle = _handle(client, task_id)
    try:
        view = await _task_call(client, task_id, handle.query(TaskWorkflow.view_task))
        pending = await handle.query(TaskWorkflow.unrecorded)
    except TetherError:
        if recorded is not None:
            return recorded
        raise
    events = list(recorded.events) if recorded else []
    have = {e.seq for e in events}
    events += [e for e in pending if e.seq not in have]
    ledger = recorded.ledger if recorded else None
    return TaskRecord(task=view, events=sorted(events, key=lambda e: e.seq), ledger=ledger)


def _details(spec: TaskSpec) -> str:
    lines = [f"**{spec.title}**", "", spec.description, "", "Checks:"]
    lines += [f"- {c.label(i)} ({c.kind})" for i, c in enumerate(spec.checks)]
    if spec.artifact:
        lines += ["", f"Artifact: {spec.artifact.kind}"]
    return "\n".join(lines)


async def get_view(client: Client, task_id: str) -> TaskView:
    return await _task_call(client, task_id, _handle(client, task_id).query(TaskWorkflow.view_task))


async def claim_task(client: Client, task_id: str, agent: str) -> TaskView:
    """Claim the task for `agent`; the task's workflow tells the agent's session itself."""
    handle = _handle(client, task_id)
    claim = through_outages(
        lambda uid: handle.execute_update(TaskWorkflow.claim, ClaimInput(agent=agent), id=uid),
        f"task {task_id}",
    )
    return await _task_call(client, task_id, claim)


async def _founder_update(
    client: Client,
    task_id: str,
    update: Any,
    by: str,
    reason: str,
    order: FounderOrder | None,
) -> TaskView:
    """A founder action on a task. A governor's hold is lifted only with `order`, signed by the
    founder's key; the task's workflow releases the assignee's session with the same order."""
    action = FounderActionInput(by=by, reason=reason, order=order)
    handle = _handle(client, task_id)
    call: Awaitable[TaskView] = through_outages(
        lambda uid: handle.execute_update(update, action, id=uid), f"task {task_id}"
    )
    return await _task_call(client, task_id, call)


async def submit_task(client: Client, task_id: str, agent: str, note: str | None) -> SubmitResult:
    handle = _handle(client, task_id)
    inp = SubmitInput(agent=agent, note=note)
    submit = through_outages(
        lambda uid: handle.execute_update(TaskWorkflow.submit, inp, id=uid), f"task {task_id}"
    )
    return await _task_call(client, task_id, submit)


async def cancel_task(
    client: Client, task_id: str, by: str, reason: str, order: FounderOrder | None = None
) -> TaskView:
    return await _founder_update(client, task_id, TaskWorkflow.cancel, by, reason, order)


async def block_task(
    client: Client, task_id: str, by: str, reason: str, order: FounderOrder | None = None
) -> TaskView:
    return await _founder_update(client, task_id, TaskWorkflow.block, by, reason, order)


async def unblock_task(
    client: Client, task_id: str, by: str, reason: str, order: FounderOrder | None = None
) -> TaskView:
    return await _founder_update(client, task_id, TaskWorkflow.unblock, by, reason, order)


async def resume_task(
    client: Client, task_id: str, by: str, reason: str, order: FounderOrder | None = None
) -> TaskView:
    """The founder resumes a task the cost governor paused; its session may work again."""
    return await _founder_update(client, task_id, TaskWorkflow.resume, by, reason, order)
