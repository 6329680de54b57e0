"""The client side of tasks and sessions: what the CLI, the tests and any Python caller use."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tether import constants, errors
from tether.config import validation_problems
from tether.contracts import (
    DEPLOY_FINAL,
    HOLD_STATES,
    Approval,
    ApprovalVerdict,
    ArtifactResult,
    AttachInput,
    ClaimInput,
    DeployInput,
    DeployRequest,
    DeployView,
    EndSessionInput,
    FounderActionInput,
    FounderOrder,
    Gate,
    LockView,
    NoteInput,
    RecheckInput,
    ReleaseInput,
    Report,
    ReportAnswer,
    SessionInput,
    SessionState,
    SessionView,
    SubmitInput,
    SubmitResult,
    TaskInput,
    TaskSpec,
    TaskView,
)
from tether.errors import TetherError
from workflows.deployment import DeploymentWorkflow
from workflows.lock import ServiceLockWorkflow
from workflows.session import AgentSessionWorkflow
from workflows.task import TaskWorkflow

T = TypeVar("T")


class Refused(TetherError):
    """The workflow refused the request; nothing changed."""

    exit_code = 3


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


async def _call(
    call: Awaitable[T], what: str, not_found: Callable[[], Awaitable[TetherError]]
) -> T:
    """Await a workflow request; a refusal, a missing workflow or a failure is a TetherError
    saying so (`not_found` builds the error for a workflow that is closed or never existed)."""
    try:
        return await call
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            raise Refused(cause.message) from exc
        raise TetherError(f"{what}: the request failed: {cause}") from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await not_found() from exc
        raise TetherError(f"{what}: Temporal refused the request: {exc}") from exc


def _task_call(client: Client, task_id: str, call: Awaitable[T]) -> Awaitable[T]:
    async def not_found() -> TetherError:
        closed = await _closed_status(client, task_id)
        if closed:
            return Refused(f"task {task_id} is closed ({closed}); nothing changed")
        return TetherError(f"no open task {task_id!r}; `tether task list` shows the tasks")

    return _call(call, f"task {task_id}", not_found)


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
    claim = handle.execute_update(TaskWorkflow.claim, ClaimInput(agent=agent))
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
    call: Awaitable[TaskView] = _handle(client, task_id).execute_update(update, action)
    return await _task_call(client, task_id, call)


async def submit_task(client: Client, task_id: str, agent: str, note: str | None) -> SubmitResult:
    handle = _handle(client, task_id)
    submit = handle.execute_update(TaskWorkflow.submit, SubmitInput(agent=agent, note=note))
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


# --- agent sessions ---------------------------------------------------------------------------


def _session_handle(
    client: Client, agent: str
) -> WorkflowHandle[AgentSessionWorkflow, SessionView]:
    return client.get_workflow_handle_for(
        AgentSessionWorkflow.run, constants.session_workflow_id(agent)
    )


async def session_view(client: Client, agent: str) -> SessionView | None:
    """The agent's latest session (open or ended); None if it never had one."""
    try:
        return await _session_handle(client, agent).query(AgentSessionWorkflow.view_session)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise TetherError(f"session of {agent}: Temporal refused the query: {exc}") from exc


async def session_gate(client: Client, agent: str) -> Gate:
    """What PreToolUse asks on every tool call: may the agent act now, and if not, why."""
    return await _session_handle(client, agent).query(AgentSessionWorkflow.gate)


def _session_update(client: Client, agent: str, call: Awaitable[T]) -> Awaitable[T]:
    async def not_found() -> TetherError:
        last = await session_view(client, agent)
        if last is not None and last.ended_at is not None:
            return Refused(
                f"the session of {agent} has ended ({last.end_reason}, "
                f"{last.ended_at:%Y-%m-%d %H:%M} UTC); nothing changed"
            )
        return Refused(f"{agent} has no open session")

    return _call(call, f"session of {agent}", not_found)


async def start_session(client: Client, task_queue: str, inp: SessionInput) -> SessionView:
    """Start the agent's session, or attach to the open one; returns once the startup is done.

    One update-with-start (`attach`) does it; the session workflow decides. The same runtime
    session resumes; an open session of another runtime session (a process that exited without
    ending it) is ended first, its artifact test runs, and the next one starts; an ended session
    whose workflow is still closing (archiving a handoff) is waited for, never polled.
    """
    attach = AttachInput(external_id=inp.external_id, runtime=inp.runtime, source=inp.source)
    for _ in range(3):
        start = WithStartWorkflowOperation(
            AgentSessionWorkflow.run,
            inp,
            id=constants.session_workflow_id(inp.agent),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Session of {inp.agent} ({inp.runtime})",
        )
        try:
            return await client.execute_update_with_start_workflow(
                AgentSessionWorkflow.attach, attach, start_workflow_operation=start
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if not isinstance(cause, ApplicationError):
                raise TetherError(f"session of {inp.agent}: the start failed: {cause}") from exc
            if cause.type not in (errors.SESSION_ENDED, errors.SESSION_SUPERSEDED):
                raise Refused(cause.message) from exc
        except RPCError as exc:
            raise TetherError(f"session of {inp.agent}: Temporal refused the start: {exc}") from exc
        # Ended, or just superseded: its workflow closes once its record is written.
        await _closed(await start.workflow_handle())
    raise TetherError(f"could not start a session for {inp.agent}: it keeps changing; try again")


async def _closed(handle: WorkflowHandle[Any, Any], seconds: float = 60) -> None:
    # Failed or stuck: starting the new session says so if it matters.
    with contextlib.suppress(TimeoutError, WorkflowFailureError):
        await asyncio.wait_for(handle.result(), seconds)


async def end_session(client: Client, agent: str, reason: str, by: str) -> SessionView:
    handle = _session_handle(client, agent)
    end = EndSessionInput(reason=reason, by=by)
    return await _session_update(
        client, agent, handle.execute_update(AgentSessionWorkflow.end, end)
    )


async def recheck_session(client: Client, agent: str, by: str) -> SessionView:
    handle = _session_handle(client, agent)
    call = handle.execute_update(AgentSessionWorkflow.recheck, RecheckInput(by=by))
    return await _session_update(client, agent, call)


async def check_deliverable(client: Client, agent: str) -> ArtifactResult:
    handle = _session_handle(client, agent)
    call = handle.execute_update(AgentSessionWorkflow.check_deliverable)
    return await _session_update(client, agent, call)


async def resume_task(
    client: Client, task_id: str, by: str, reason: str, order: FounderOrder | None = None
) -> TaskView:
    """The founder resumes a task the cost governor paused; its session may work again."""
    return await _founder_update(client, task_id, TaskWorkflow.resume, by, reason, order)


# Temporal admits a few updates per workflow at a time (history.maxInFlightUpdates, default
# 10); a burst of parallel tool calls beyond that waits its turn, for this long at most.
REPORT_BUSY_WAIT = 30.0


async def report(client: Client, agent: str, inp: Report) -> ReportAnswer:
    """Report a tool call, context usage or spend to the agent's session (the governors); the
    answer carries the directives and, when the work must stop, why."""
    handle = _session_handle(client, agent)
    delay, waited = 0.05, 0.0
    while True:
        try:
            call = handle.execute_update(AgentSessionWorkflow.report, inp)
            return await _session_update(client, agent, call)
        except TetherError as exc:
            busy = isinstance(exc.__cause__, RPCError) and (
                exc.__cause__.status == RPCStatusCode.RESOURCE_EXHAUSTED
            )
            if not busy or waited >= REPORT_BUSY_WAIT:
                raise
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 1.0)


async def note_session(client: Client, agent: str, inp: NoteInput) -> SessionView:
    handle = _session_handle(client, agent)
    return await _session_update(
        client, agent, handle.execute_update(AgentSessionWorkflow.note, inp)
    )


async def release_session(
    client: Client, agent: str, by: str, reason: str, order: FounderOrder | None = None
) -> SessionView:
    """The founder releases a session's loop or cost hold (a held task is released with
    `tether task unblock` / `tether resume`, which also releases the session)."""
    view = await session_view(client, agent)
    if view is None or view.state == SessionState.ENDED:
        raise Refused(f"{agent} has no open session")
    hold = view.governor.hold
    if hold is not None and hold.task_id is not None:
        task = await get_view(client, hold.task_id)
        if task.state in HOLD_STATES:
            command = "tether resume" if hold.kind == "cost" else "tether task unblock"
            raise Refused(
                f"the session of {agent} is held on task {hold.task_id}; release the task: "
                f"{command} {hold.task_id}"
            )
    release = ReleaseInput(
        by=by, reason=reason, task_id=hold.task_id if hold else None, order=order
    )
    call = _session_handle(client, agent).execute_update(AgentSessionWorkflow.release_hold, release)
    return await _session_update(client, agent, call)


# --- deployments ------------------------------------------------------------------------------


def new_deployment_id(service: str) -> str:
    return f"{constants.DEPLOY_WORKFLOW_ID_PREFIX}{service}-{uuid.uuid4().hex[:8]}"


def _deploy_handle(
    client: Client, deployment_id: str
) -> WorkflowHandle[DeploymentWorkflow, DeployView]:
    return client.get_workflow_handle_for(DeploymentWorkflow.run, deployment_id)


async def request_deploy(client: Client, task_queue: str, req: DeployRequest) -> DeployView:
    """Start a deployment; returns once its ref is resolved to a commit (or it was refused)."""
    deployment_id = new_deployment_id(req.service)
    start = WithStartWorkflowOperation(
        DeploymentWorkflow.run,
        DeployInput(deployment_id=deployment_id, request=req),
        id=deployment_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        static_summary=f"Deploy {req.service} at {req.ref} for {req.agent}",
    )
    call = client.execute_update_with_start_workflow(
        DeploymentWorkflow.planned, start_workflow_operation=start
    )

    async def not_found() -> TetherError:
        return TetherError(f"deployment {deployment_id} could not be started")

    return await _call(call, f"deployment {deployment_id}", not_found)


async def deploy_view(client: Client, deployment_id: str) -> DeployView:
    async def not_found() -> TetherError:
        return TetherError(f"no deployment {deployment_id!r}; `tether deploy queue SERVICE` lists")

    call = _deploy_handle(client, deployment_id).query(DeploymentWorkflow.view_deployment)
    return await _call(call, f"deployment {deployment_id}", not_found)


async def deploy_queue(client: Client, service: str) -> LockView:
    handle = client.get_workflow_handle_for(
        ServiceLockWorkflow.run, constants.lock_workflow_id(service)
    )
    try:
        return await handle.query(ServiceLockWorkflow.queue)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return LockView(service=service)
        raise TetherError(f"lock of {service}: Temporal refused the query: {exc}") from exc


def prepare_approval(
    view: DeployView,
    *,
    decision: str,
    by: str,
    reason: str,
    ttl: timedelta | None,
    now: datetime | None = None,
) -> Approval:
    """The approval to sign for this deployment, exactly as the worker will check it."""
    if view.commit is None or view.plan is None:
        raise TetherError(f"deployment {view.deployment_id} has no commit yet ({view.state})")
    if view.state in DEPLOY_FINAL:
        raise Refused(f"deployment {view.deployment_id} is {view.state}: {view.reason}")
    at = now or datetime.now(UTC)
    return Approval(
        deployment_id=view.deployment_id,
        service=view.request.service,
        ref=view.request.ref,
        commit=view.commit,
        decision=decision,
        reason=reason,
        expires_at=at + (ttl or timedelta(minutes=view.plan.approval_ttl_minutes)),
        signed_at=at,
        by=by,
    )


async def submit_approval(
    client: Client, deployment_id: str, approval: Approval | dict[str, object]
) -> ApprovalVerdict:
    """Send the founder's signed approval (or rejection); the worker judges its signature."""
    if not isinstance(approval, Approval):
        try:
            approval = Approval.model_validate(approval)
        except ValidationError as exc:
            raise TetherError(
                f"not an approval ({validation_problems(exc)}); `tether approve "
                f"{deployment_id} --print` shows one"
            ) from exc
    call = _deploy_handle(client, deployment_id).execute_update(
        DeploymentWorkflow.submit_approval, approval
    )

    async def not_found() -> TetherError:
        return TetherError(f"no running deployment {deployment_id!r}")

    return await _call(call, f"deployment {deployment_id}", not_found)
