"""How the client turns a workflow's answer into a result or a TetherError that says what to do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import (
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tether.errors import TetherError

T = TypeVar("T")


class Refused(TetherError):
    """The workflow refused the request; nothing changed. `kind`: the refusal's type (an
    ApplicationError type of tether.errors, e.g. SessionEnded), when the workflow gave one."""

    exit_code = 3

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class UpdateTimedOut(TetherError):
    """Temporal's wait for an update ran out, or the caller stopped waiting: not a refusal (the
    worker may be down); sent again with its update id, the update is done at most once."""


log = logging.getLogger("tether.client")

# How long a request waits before saying what it is waiting for, and how often after that.
WAIT_NOTICE_SECONDS = 5.0


async def _why_waiting(handle: WorkflowHandle[Any, Any]) -> str | None:
    """What holds the workflow up: a retrying activity and its last error, or no worker."""
    try:
        described = (await handle.describe()).raw_description
    except RPCError:
        return None
    for pending in described.pending_activities:
        if pending.attempt > 1 or pending.HasField("last_failure"):
            failure = pending.last_failure.message or "no error yet"
            return (
                f"{pending.activity_type.name} is retrying (attempt {pending.attempt}): "
                f"{failure[:300]}"
            )
    task = described.pending_workflow_task
    if task.HasField("scheduled_time") and not task.HasField("started_time"):
        queue = described.execution_config.task_queue.name
        return f"no worker has picked it up (is a Tether worker running on task queue {queue}?)"
    return None


async def _notify_while_waiting(handle: WorkflowHandle[Any, Any], what: str) -> None:
    said = None
    while True:
        await asyncio.sleep(WAIT_NOTICE_SECONDS)
        why = await _why_waiting(handle)
        if why is not None and why != said:
            log.warning("%s: still waiting: %s", what, why)
            said = why


async def ask(
    call: Awaitable[T],
    what: str,
    not_found: Callable[[], Awaitable[TetherError]],
    handle: WorkflowHandle[Any, Any] | None = None,
) -> T:
    """Await a workflow request; a refusal, a missing workflow or a failure is a TetherError
    saying so (`not_found` builds the error for a workflow that is closed or never existed).
    With the workflow's `handle`, a request that waits says why on the `tether.client` logger
    (a retrying activity and its error, or no worker), instead of waiting without a word."""
    watcher = asyncio.create_task(_notify_while_waiting(handle, what)) if handle else None
    try:
        return await call
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            raise Refused(cause.message, str(cause.type or "")) from exc
        raise TetherError(f"{what}: the request failed: {cause}") from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        # Temporal's own wait for the update ran out (the worker may be down): not a refusal;
        # sent again with its update id, it is done at most once.
        raise UpdateTimedOut(f"{what}: the update did not finish: {exc}") from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await not_found() from exc
        raise TetherError(f"{what}: Temporal refused the request: {exc}") from exc
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def not_ready(exc: BaseException | None) -> bool:
    """Temporal aborted an update before the workflow accepted it (`WorkflowNotReadyFailure`:
    the server dropped the workflow task carrying it, temporalio/temporal#7296). Nothing ran:
    sending it again is safe."""
    return (
        isinstance(exc, RPCError)
        and exc.status == RPCStatusCode.FAILED_PRECONDITION
        and b"WorkflowNotReadyFailure" in exc.raw_grpc_status
    )


# Statuses of a Temporal that is restarting or out of reach, not of a refusal.
_OUTAGE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
OUTAGE_SECONDS = 120.0


async def through_outages(
    send: Callable[[str], Awaitable[T]], what: str, seconds: float = OUTAGE_SECONDS
) -> T:
    """Send an update with one update id until Temporal answers. When the connection drops
    (Temporal restarting), or Temporal aborted the update before the workflow took it
    (`not_ready`), the same update id is sent again: Temporal runs an update id at most once,
    so a submit caught by a restart is neither lost nor done twice."""
    update_id = str(uuid.uuid4())
    deadline = asyncio.get_running_loop().time() + seconds
    said = False
    while True:
        try:
            return await send(update_id)
        except RPCError as exc:
            left = deadline - asyncio.get_running_loop().time()
            if (exc.status not in _OUTAGE and not not_ready(exc)) or left <= 0:
                raise
            if not said:
                log.warning(
                    "%s: Temporal is unreachable (%s); retrying for %.0f s", what, exc, left
                )
                said = True
            await asyncio.sleep(min(1.0, max(left, 0)))


async def wait_closed(handle: WorkflowHandle[Any, Any], seconds: float = 60) -> None:
    # Failed or stuck: starting the new session says so if it matters.
    with contextlib.suppress(TimeoutError, WorkflowFailureError):
        await asyncio.wait_for(handle.result(), seconds)
