"""Tasks from the client: create, claim, submit, and the founder's actions (signed where a
governor holds the task)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from temporalio.client import (
    Client,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from tether import constants
from tether.client.calls import Refused, T, ask, through_outages
from tether.contracts import (
    ClaimInput,
    FounderActionInput,
    FounderOrder,
    SubmitInput,
    SubmitResult,
    TaskInput,
    TaskSpec,
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
    workflow_id = constants.task_workflow_id(spec.id)
    try:
        handle = await client.start_workflow(
            TaskWorkflow.run,
            TaskInput(spec=spec),
            id=workflow_id,
            task_queue=task_queue,
            # A task id names one task forever, even after it is done or cancelled.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(constants.SA_TASK, spec.id)]
            ),
            static_summary=f"Task {spec.id}: {spec.title}",
            static_details=_details(spec),
        )
    except WorkflowAlreadyStartedError as exc:
        raise Refused(f"task {spec.id!r} already exists; choose another id") from exc
    return await _task_call(client, spec.id, handle.execute_update(TaskWorkflow.sync))


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
