"""The hook protocol's calls (query, update, start, wait for close) on the gateway's sealed
Temporal client, awaited on the gateway's loop (tether/gateway/hooks.py), each sealed for the
agent and runtime session the request speaks for.

Every argument is sent as its handler's own contract, never as a loose dict: a bad one is
refused here, with what was wrong, and the seal (tether/trust/seals.py) covers exactly what the
workflow will decode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tether.client.calls import Refused as ClientRefused
from tether.client.sessions import start_session
from tether.config import validation_problems
from tether.contracts import AttachInput, EndSessionInput, Report, SessionInput
from tether.errors import TetherError
from tether.hook.wire import NOT_RUNNING, Refused, Unreachable
from tether.names import SESSION_ATTACH, SESSION_END, SESSION_REPORT
from tether.trust import seals

T = TypeVar("T")

# The contract each update the hook adapter sends takes.
CONTRACTS: dict[str, type[BaseModel]] = {
    SESSION_REPORT: Report,
    SESSION_ATTACH: AttachInput,
    SESSION_END: EndSessionInput,
}


class SealedTemporal:
    def __init__(self, client: Client, agent: str, session: str | None) -> None:
        self.client = client
        self.agent = agent
        self.session = session

    async def _run(self, make: Callable[[], Awaitable[T]], limit: float) -> T:
        try:
            with seals.speaking(self.agent, self.session):
                return await asyncio.wait_for(make(), limit)
        except TimeoutError:
            raise Unreachable(
                f"Temporal did not answer within {limit:g}s (is a Tether worker running?)"
            ) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise Refused(exc.message or "no such workflow", NOT_RUNNING) from exc
            raise Unreachable(f"Temporal refused the call: {exc.message}") from exc
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            raise Unreachable(f"the update did not finish within {limit:g}s") from exc
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                raise Refused(cause.message, str(cause.type or "")) from exc
            raise Refused(str(cause or exc)) from exc

    async def query(self, workflow_id: str, name: str) -> Any | None:
        try:
            handle = self.client.get_workflow_handle(workflow_id)
            return await self._run(lambda: handle.query(name), 5.0)
        except Refused as exc:
            if exc.kind == NOT_RUNNING:
                return None
            raise

    async def update(
        self,
        workflow_id: str,
        name: str,
        args: list[Any],
        limit: float,
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

        return await self._run(send, limit)

    async def start_session(self, task_queue: str, arg: dict[str, Any], limit: float) -> Any:
        """Start the agent's session or attach to the open one: the Python client's own
        protocol (tether.client.sessions.start_session, one update-with-start of `attach`;
        an ended or superseded session is waited for until it closes), sealed for the agent."""
        try:
            inp = SessionInput.model_validate(arg)
        except ValidationError as exc:
            raise Refused(f"session start: {validation_problems(exc)}", "InvalidInput") from exc

        async def start() -> Any:
            try:
                view = await start_session(self.client, task_queue, inp)
            except ClientRefused as exc:
                raise Refused(str(exc)) from exc
            except TetherError as exc:
                raise Unreachable(str(exc)) from exc
            return view.model_dump(mode="json")

        return await self._run(start, limit)
