"""The hook protocol's calls on the gateway's sealed Temporal client: the Python client's own
session functions (tether.client.sessions: update-with-start, the gate, report, the
deliverable check, the end), awaited on the gateway's loop (tether/gateway/hooks.py), each
sealed for the agent and runtime session the request speaks for, within a time limit, and
their answers as the plain JSON the hooks render.

Every argument is read as its handler's own contract, never as a loose dict: a bad one is
refused here, with what was wrong, and the seal (tether/trust/seals.py) covers exactly what the
workflow will decode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import Client
from temporalio.service import RPCError

from tether.client import sessions
from tether.client.calls import Refused as ClientRefused
from tether.client.calls import UpdateTimedOut
from tether.config import validation_problems
from tether.contracts import EndSessionInput, Report, SessionInput
from tether.errors import TetherError
from tether.hook.wire import Refused, Unreachable
from tether.trust import seals

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def _read(contract: type[M], arg: dict[str, Any], what: str) -> M:
    try:
        return contract.model_validate(arg)
    except ValidationError as exc:
        raise Refused(f"{what}: {validation_problems(exc)}", "InvalidInput") from exc


def _plain(model: BaseModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(mode="json")


class SealedTemporal:
    def __init__(self, client: Client, agent: str, session: str | None) -> None:
        self.client = client
        self.agent = agent
        self.session = session

    async def _run(self, make: Callable[[], Awaitable[T]], limit: float) -> T:
        """`make()` sealed for the agent and its runtime session, within `limit` seconds; a
        refusal is Refused (with the workflow's type), anything else that failed Unreachable."""
        try:
            with seals.speaking(self.agent, self.session):
                return await asyncio.wait_for(make(), limit)
        except TimeoutError:
            raise Unreachable(
                f"Temporal did not answer within {limit:g}s (is a Tether worker running?)"
            ) from None
        except ClientRefused as exc:
            raise Refused(str(exc), exc.kind) from exc
        except UpdateTimedOut as exc:
            raise Unreachable(f"the update did not finish within {limit:g}s") from exc
        except TetherError as exc:
            raise Unreachable(str(exc)) from exc
        except RPCError as exc:
            raise Unreachable(f"Temporal refused the call: {exc.message}") from exc

    async def gate(self, limit: float = 5.0) -> dict[str, Any] | None:
        """What PreToolUse asks: None when the agent has no session."""
        return _plain(
            await self._run(lambda: sessions.session_gate(self.client, self.agent), limit)
        )

    async def report(
        self, report: dict[str, Any], limit: float, update_id: str | None = None
    ) -> dict[str, Any]:
        inp = _read(Report, report, "report")
        answer = await self._run(
            lambda: sessions.report(self.client, self.agent, inp, update_id), limit
        )
        return answer.model_dump(mode="json")

    async def check_deliverable(self, limit: float) -> dict[str, Any]:
        result = await self._run(lambda: sessions.check_deliverable(self.client, self.agent), limit)
        return result.model_dump(mode="json")

    async def request_end(self, end: dict[str, Any], limit: float) -> None:
        """Ask the session to end; returns once it took the request."""
        inp = _read(EndSessionInput, end, "session end")
        await self._run(lambda: sessions.request_end(self.client, self.agent, inp), limit)

    async def start_session(self, task_queue: str, arg: dict[str, Any], limit: float) -> Any:
        """Start the agent's session or attach to the open one: the Python client's own
        protocol (one update-with-start of `attach`; an ended or superseded session is waited
        for until it closes), sealed for the agent."""
        inp = _read(SessionInput, arg, "session start")
        view = await self._run(lambda: sessions.start_session(self.client, task_queue, inp), limit)
        return view.model_dump(mode="json")
