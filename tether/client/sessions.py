"""Agent sessions from the client: start or attach (update-with-start), reports, notes, the end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tether import constants, errors
from tether.client.calls import Refused, T, ask, not_ready, wait_closed
from tether.client.tasks import get_view
from tether.contracts import (
    HOLD_STATES,
    ArtifactResult,
    AttachInput,
    EndSessionInput,
    FounderOrder,
    Gate,
    NoteInput,
    RecheckInput,
    ReleaseInput,
    Report,
    ReportAnswer,
    RunRequest,
    SessionInput,
    SessionState,
    SessionView,
    StopInput,
)
from tether.errors import TetherError
from workflows.session import AgentSessionWorkflow


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


async def session_gate(client: Client, agent: str) -> Gate | None:
    """What PreToolUse asks on every tool call: may the agent act now, and if not, why; None
    when the agent has no session Temporal still keeps."""
    try:
        return await _session_handle(client, agent).query(AgentSessionWorkflow.gate)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise TetherError(f"session of {agent}: Temporal refused the query: {exc}") from exc


def _session_update(client: Client, agent: str, call: Awaitable[T]) -> Awaitable[T]:
    async def not_found() -> TetherError:
        last = await session_view(client, agent)
        if last is not None and last.ended_at is not None:
            return Refused(
                f"the session of {agent} has ended ({last.end_reason}, "
                f"{last.ended_at:%Y-%m-%d %H:%M} UTC); nothing changed",
                errors.NOT_RUNNING,
            )
        return Refused(f"{agent} has no open session", errors.NOT_RUNNING)

    return ask(call, f"session of {agent}", not_found, _session_handle(client, agent))


async def start_session(client: Client, task_queue: str, inp: SessionInput) -> SessionView:
    """Start the agent's session, or attach to the open one; returns once the startup is done.

    One update-with-start (`attach`) does it; the session workflow decides. The same runtime
    session resumes; an open session of another runtime session (a process that exited without
    ending it) is ended first, its artifact test runs, and the next one starts; an ended session
    whose workflow is still closing (archiving a handoff) is waited for, never polled.
    """
    attach = AttachInput(external_id=inp.external_id, runtime=inp.runtime, source=inp.source)
    summary = f"Session of {inp.agent} ({inp.runtime})"
    return await _with_session(
        client, task_queue, inp, AgentSessionWorkflow.attach, attach, summary
    )


async def _with_session(
    client: Client,
    task_queue: str,
    inp: SessionInput,
    update: Any,
    arg: Any,
    summary: str,
) -> SessionView:
    """`update` on the agent's session, starting the session if none is open (one
    update-with-start). A session that has ended, or was just superseded, is waited for until
    its workflow closes (once its record is written), and the next one takes the update."""
    for _ in range(3):
        start = WithStartWorkflowOperation(
            AgentSessionWorkflow.run,
            inp,
            id=constants.session_workflow_id(inp.agent),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=summary,
        )
        try:
            view: SessionView = await client.execute_update_with_start_workflow(
                update, arg, start_workflow_operation=start
            )
            return view
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if not isinstance(cause, ApplicationError):
                raise TetherError(f"session of {inp.agent}: the start failed: {cause}") from exc
            if cause.type not in (errors.SESSION_ENDED, errors.SESSION_SUPERSEDED):
                raise Refused(cause.message) from exc
        except RPCError as exc:
            raise TetherError(f"session of {inp.agent}: Temporal refused the start: {exc}") from exc
        await wait_closed(await start.workflow_handle())
    raise TetherError(f"the session of {inp.agent} keeps changing; try again")


async def end_session(client: Client, agent: str, reason: str, by: str) -> SessionView:
    handle = _session_handle(client, agent)
    end = EndSessionInput(reason=reason, by=by)
    return await _session_update(
        client, agent, handle.execute_update(AgentSessionWorkflow.end, end)
    )


async def request_end(client: Client, agent: str, end: EndSessionInput) -> None:
    """Ask the agent's session to end, and return once it has taken the request (its artifact
    test and record follow in the workflow): what a runtime's SessionEnd hook does, which
    must not hold the runtime's exit."""
    handle = _session_handle(client, agent)
    call = handle.start_update(
        AgentSessionWorkflow.end, end, wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    await _session_update(client, agent, call)


async def recheck_session(client: Client, agent: str, by: str) -> SessionView:
    handle = _session_handle(client, agent)
    call = handle.execute_update(AgentSessionWorkflow.recheck, RecheckInput(by=by))
    return await _session_update(client, agent, call)


async def check_deliverable(client: Client, agent: str) -> ArtifactResult:
    handle = _session_handle(client, agent)
    call = handle.execute_update(AgentSessionWorkflow.check_deliverable)
    return await _session_update(client, agent, call)


# Temporal admits a few updates per workflow at a time (history.maxInFlightUpdates, default
# 10); a burst of parallel tool calls beyond that waits its turn, for this long at most. The
# same for a report Temporal aborted before the workflow took it (sent again: nothing ran).
REPORT_BUSY_WAIT = 30.0


async def report(
    client: Client, agent: str, inp: Report, update_id: str | None = None
) -> ReportAnswer:
    """Report a tool call, context usage or spend to the agent's session (the governors); the
    answer carries the directives and, when the work must stop, why. `update_id`: the same
    report sent again under the same id is counted once (the gateway's staged reports)."""
    handle = _session_handle(client, agent)
    delay, waited = 0.05, 0.0
    while True:
        try:
            call = handle.execute_update(AgentSessionWorkflow.report, inp, id=update_id)
            return await _session_update(client, agent, call)
        except TetherError as exc:
            busy = isinstance(exc.__cause__, RPCError) and (
                exc.__cause__.status == RPCStatusCode.RESOURCE_EXHAUSTED or not_ready(exc.__cause__)
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


async def run_agent(
    client: Client, task_queue: str, agent: str, runtime: str, request: RunRequest
) -> SessionView:
    """`tether run AGENT`: open the agent's session (or use the open one), then have it start the
    agent's process; returns once the process is launched. Founder-signed (the client's seal)."""
    inp = SessionInput(agent=agent, runtime=runtime, task_id=request.task_id, source="tether-run")
    summary = f"Session of {agent} ({runtime}), run by Tether"
    return await _with_session(
        client, task_queue, inp, AgentSessionWorkflow.run_agent, request, summary
    )


async def stop_agent(client: Client, agent: str, request: StopInput) -> SessionView:
    """`tether stop AGENT`: end the agent's process group now; returns once it is gone."""
    handle = _session_handle(client, agent)
    call = handle.execute_update(AgentSessionWorkflow.stop_agent, request)
    return await _session_update(client, agent, call)
