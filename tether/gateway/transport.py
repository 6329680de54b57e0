"""The hook adapter's calls (query, update, start, wait for close) on the gateway's sealed
Temporal client: the same adapter (tether/hook/claude_code.py) answers hooks in the gateway, run
in a thread, and each call it makes is run on the gateway's event loop, sealed for the agent and
runtime session the request speaks for.

Every argument is sent as its handler's own contract, never as a loose dict: a bad one is
refused here, with what was wrong, and the seal (tether/seals.py) covers exactly what the
workflow will decode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tether import seals
from tether.client.calls import wait_closed
from tether.config import validation_problems
from tether.contracts import AttachInput, EndSessionInput, Report, SessionInput
from tether.hook.wire import NOT_RUNNING, Refused, Unreachable
from tether.names import SESSION_ATTACH, SESSION_END, SESSION_REPORT, SESSION_WORKFLOW

T = TypeVar("T")

# The contract each update the hook adapter sends takes.
CONTRACTS: dict[str, type[BaseModel]] = {
    SESSION_REPORT: Report,
    SESSION_ATTACH: AttachInput,
    SESSION_END: EndSessionInput,
}


class SealedTemporal:
    def __init__(
        self, client: Client, loop: asyncio.AbstractEventLoop, agent: str, session: str | None
    ) -> None:
        self.client = client
        self.loop = loop
        self.agent = agent
        self.session = session

    def _run(self, make: Callable[[], Awaitable[T]], timeout: float) -> T:
        async def call() -> T:
            with seals.speaking(self.agent, self.session):
                return await asyncio.wait_for(make(), timeout)

        future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        try:
            return future.result(timeout + 1)
        except (TimeoutError, FutureTimeout):
            future.cancel()
            raise Unreachable(
                f"Temporal did not answer within {timeout:g}s (is a Tether worker running?)"
            ) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise Refused(exc.message or "no such workflow", NOT_RUNNING) from exc
            raise Unreachable(f"Temporal refused the call: {exc.message}") from exc
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            raise Unreachable(f"the update did not finish within {timeout:g}s") from exc
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                raise Refused(cause.message, str(cause.type or "")) from exc
            raise Refused(str(cause or exc)) from exc

    def query(self, workflow_id: str, name: str) -> Any | None:
        try:
            return self._run(lambda: self.client.get_workflow_handle(workflow_id).query(name), 5.0)
        except Refused as exc:
            if exc.kind == NOT_RUNNING:
                return None
            raise

    def update(
        self,
        workflow_id: str,
        name: str,
        args: list[Any],
        timeout: float,
        wait_completed: bool = True,
        update_id: str | None = None,
    ) -> Any:
        contract = CONTRACTS.get(name)
        if contract is not None and args:
            try:
                args = [contract.model_validate(args[0])]
            except ValidationError as exc:
                raise Refused(f"{name}: {validation_problems(exc)}", "InvalidInput") from exc
        handle = self.client.get_workflow_handle(workflow_id)

        async def send() -> Any:
            if wait_completed:
                return await handle.execute_update(name, args=args, id=update_id)
            await handle.start_update(
                name, args=args, id=update_id, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
            return None

        return self._run(send, timeout)

    def start(self, workflow_id: str, task_queue: str, arg: dict[str, Any], summary: str) -> str:
        try:
            inp = SessionInput.model_validate(arg)
        except ValidationError as exc:
            raise Refused(f"session start: {validation_problems(exc)}", "InvalidInput") from exc

        async def start() -> str:
            handle = await self.client.start_workflow(
                SESSION_WORKFLOW,
                inp,
                id=workflow_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary=summary,
            )
            return handle.result_run_id or ""

        return self._run(start, 10.0)

    def wait_closed(self, workflow_id: str, run_id: str, timeout: float) -> None:
        if timeout <= 0:
            return
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id or None)
        try:
            self._run(lambda: wait_closed(handle), timeout)
        except Unreachable:
            return
