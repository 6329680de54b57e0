"""How the client turns a workflow's answer into a result or a TetherError that says what to do."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import (
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tether.errors import TetherError

T = TypeVar("T")


class Refused(TetherError):
    """The workflow refused the request; nothing changed."""

    exit_code = 3


async def ask(call: Awaitable[T], what: str, not_found: Callable[[], Awaitable[TetherError]]) -> T:
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


async def wait_closed(handle: WorkflowHandle[Any, Any], seconds: float = 60) -> None:
    # Failed or stuck: starting the new session says so if it matters.
    with contextlib.suppress(TimeoutError, WorkflowFailureError):
        await asyncio.wait_for(handle.result(), seconds)
