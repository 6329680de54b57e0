"""The gateway's HTTP application (Starlette) and its one shared state.

Every request names its agent by its token alone (`Authorization: Bearer tether_agent_...`); an
`agent` the request also names must be the same one. What the gateway forwards is sealed for
that agent (tether/seals.py), so a workflow refuses it for any other agent whatever the request
said. A hook event is also bound to its runtime session: the session workflow refuses a report
from a runtime session that is not the one it is attached to.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client

from activities.store import Store
from tether import seals
from tether.client import tasks as task_api
from tether.client.calls import Refused as ClientRefused
from tether.client.sessions import (
    check_deliverable,
    note_session,
    recheck_session,
    session_view,
)
from tether.config import TetherConfig, validation_problems
from tether.contracts import NoteInput
from tether.errors import TetherError
from tether.gateway.transport import SealedTemporal
from tether.hook import claude_code, runtimes
from tether.hook.claude_code import (
    MAX_INPUT_BYTES,
    BadInput,
    Hook,
    check_translated,
    read_payload,
)
from tether.names import NAME_PATTERN

log = logging.getLogger("tether.gateway")

# How long a token's verdict is kept: a revoked token stops working within this.
TOKEN_CACHE_SECONDS = 5.0


@dataclass
class Gateway:
    client: Client  # sealed with the gateway's key
    store: Store
    config: TetherConfig
    task_queue: str
    home: Path
    _tokens: dict[str, tuple[float, str | None]] = field(default_factory=dict)

    async def agent_for(self, token: str) -> str | None:
        now = time.monotonic()
        cached = self._tokens.get(token)
        if cached is not None and now - cached[0] < TOKEN_CACHE_SECONDS:
            return cached[1]
        agent = await self.store.agent_for_token(token)
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[token] = (now, agent)
        return agent

    def fail_closed(self, agent: str) -> bool:
        known = self.config.agent(agent)
        return True if known is None else known.fail_closed


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _bearer(request: Request) -> str:
    value = request.headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Unauthorized(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _agent(gateway: Gateway, request: Request, named: str | None) -> str:
    """The agent the request's token names; Unauthorized when there is none, or when the request
    names another agent."""
    token = _bearer(request)
    if not token:
        raise Unauthorized(
            401,
            "no agent token: send Authorization: Bearer <token> (TETHER_AGENT_TOKEN); the "
            "founder mints one with `tether agent token AGENT`",
        )
    agent = await gateway.agent_for(token)
    if agent is None:
        raise Unauthorized(
            401,
            "the agent token is not valid (revoked, rotated or never minted); ask the founder "
            "for a new one: `tether agent token AGENT`",
        )
    if named and named != agent:
        raise Unauthorized(403, f"this token is agent {agent}'s; it cannot speak for agent {named}")
    return agent


def _safe_transcript(payload: dict[str, Any], home: Path) -> None:
    """The transcript path comes from the agent: read only a JSON-lines file outside Tether's
    own folder (never a key, never the database's files)."""
    raw = payload.get("transcript_path")
    if not raw:
        return
    path = Path(str(raw)).expanduser()
    try:
        resolved = path.resolve()
        home_resolved = home.resolve()
    except (OSError, RuntimeError):
        payload.pop("transcript_path", None)
        return
    if path.is_absolute() and resolved.suffix == ".jsonl" and not resolved.exists():
        # Claude Code names it before it writes it (SessionStart): nothing to read yet.
        payload.pop("transcript_path", None)
        return
    if (
        not path.is_absolute()
        or resolved.suffix != ".jsonl"
        or resolved.is_relative_to(home_resolved)
        or not resolved.is_file()
    ):
        log.warning("ignored transcript path %s: not a .jsonl file Tether may read", raw)
        payload.pop("transcript_path", None)


async def hook(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    runtime = request.path_params["runtime"]
    event = request.path_params["event"]
    try:
        adapter = runtimes.adapter(runtime)
    except KeyError as exc:
        return _error(404, str(exc.args[0]))
    claude = adapter.events.get(event, event)
    try:
        agent = await _agent(gateway, request, request.query_params.get("agent"))
    except Unauthorized as exc:
        # A tool call is denied and a session told why; other events are refused outright.
        refusal = claude_code._trouble_answer(claude, f"Tether refused: {exc}", True, outage=False)
        if claude in ("PreToolUse", "SessionStart") and refusal is not None:
            return _rendered(adapter, claude, refusal)
        return _error(exc.status, str(exc))
    fail_closed = gateway.fail_closed(agent)
    body = await request.body()
    try:
        if len(body) > MAX_INPUT_BYTES:
            raise BadInput(f"more than {MAX_INPUT_BYTES // (1024 * 1024)} MB")
        payload = read_payload(io.BytesIO(body), check_tool_input=False)
        event = str(payload.get("hook_event_name") or event)
        translated = adapter.to_claude(event, payload)
        if translated is None:
            return Response(status_code=200)  # an event Tether does not govern
        claude, payload = translated
        check_translated(payload)
    except BadInput as exc:
        refusal = claude_code._trouble_answer(
            claude, f"Tether refused the hook input: {exc}", fail_closed, outage=False
        )
        if refusal:
            return _rendered(adapter, claude, refusal)
        return _error(400, f"bad hook input: {exc}")
    _safe_transcript(payload, gateway.home)
    session = payload.get("session_id") or None
    temporal = SealedTemporal(gateway.client, asyncio.get_running_loop(), agent, session)
    hook = Hook(
        agent,
        temporal,
        gateway.task_queue,
        fail_closed,
        env=claude_code.forwarded_env(request.headers),
        home=gateway.home,
        report_timeout=claude_code.report_timeout(request.headers),
        runtime=runtime,
    )
    # The adapter reads transcripts (files) and waits on Temporal: in a thread, its calls on
    # this loop.
    trouble: list[str] = []
    answer = await asyncio.to_thread(claude_code.answer, hook, claude, payload, trouble.append)
    for line in trouble:
        log.warning("%s %s of %s: %s", runtime, event, agent, line)
    # The forwarding command prints it for Claude Code's debug log; HTTP hooks ignore it.
    shown = (
        " ".join(trouble[0].split())[:500].encode("ascii", "replace").decode() if trouble else ""
    )
    headers = {claude_code.TROUBLE_HEADER: shown} if shown else None
    return _rendered(adapter, claude, answer, headers)


def _rendered(
    adapter: runtimes.Adapter,
    claude: str,
    answer: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Tether's answer in the runtime's own form (what its hook prints)."""
    rendered = adapter.render(claude, answer)
    if rendered is not None:
        return JSONResponse(rendered, headers=headers)
    return Response(status_code=200, headers=headers)


# -- what an agent's `tether` commands ask -------------------------------------------------------


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > 1024 * 1024:
        raise TetherError("the request body is larger than 1 MB")
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise TetherError(f"the request body is not JSON ({str(exc)[:120]})") from exc
    if not isinstance(data, dict):
        raise TetherError("the request body must be a JSON object")
    return data


def _dump(value: BaseModel | None) -> Any:
    return None if value is None else value.model_dump(mode="json")


async def agent_call(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        data = await _json(request)
        named = data.get("agent")
        agent = await _agent(gateway, request, str(named) if named else None)
        action = request.path_params["action"]
        client = gateway.client
        with seals.speaking(agent):
            result: Any
            if action == "claim":
                task = _task_id(request)
                result = _dump(await task_api.claim_task(client, task, agent))
            elif action == "submit":
                task = _task_id(request)
                note = str(data.get("note") or "")
                result = _dump(await task_api.submit_task(client, task, agent, note))
            elif action == "note":
                noted = NoteInput.model_validate({k: v for k, v in data.items() if k != "agent"})
                result = _dump(await note_session(client, agent, noted))
            elif action == "recheck":
                result = _dump(await recheck_session(client, agent, f"agent {agent}"))
            elif action == "check":
                result = _dump(await check_deliverable(client, agent))
            elif action == "session":
                result = _dump(await session_view(client, agent))
            else:
                return _error(404, f"no such request: {action}")
        return JSONResponse({"agent": agent, "result": result})
    except Unauthorized as exc:
        return _error(exc.status, str(exc))
    except ValidationError as exc:
        return _error(400, validation_problems(exc))
    except ClientRefused as exc:
        return _error(409, str(exc))
    except TetherError as exc:
        return _error(400, str(exc))


def _task_id(request: Request) -> str:
    task = request.path_params.get("task") or ""
    if not re.fullmatch(NAME_PATTERN, task):
        raise TetherError(f"{task!r} is not a task id (lower-case letters, digits, '.', '_', '-')")
    return str(task)


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


def build_app(gateway: Gateway) -> Starlette:
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/hooks/{runtime}/{event}", hook, methods=["POST"]),
            Route("/v1/tasks/{task}/{action}", agent_call, methods=["POST"]),
            Route("/v1/session/{action}", agent_call, methods=["POST"]),
        ]
    )
    app.state.gateway = gateway
    return app
