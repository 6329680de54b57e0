"""The gateway's HTTP application (Starlette) and its one shared state.

Every request names its agent by its token alone (`Authorization: Bearer tether_agent_...`); an
`agent` the request also names must be the same one. What the gateway forwards is sealed for
that agent (tether/trust/seals.py), so a workflow refuses it for any other agent whatever the
request said. A hook event is also bound to its runtime session: the session workflow refuses a
report from a runtime session that is not the one it is attached to.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client

from tether import runtimes
from tether.client import tasks as task_api
from tether.client.calls import Refused as ClientRefused
from tether.client.connection import unsealed
from tether.client.deployments import request_deploy
from tether.client.sessions import (
    check_deliverable,
    note_session,
    recheck_session,
    session_view,
    start_session,
)
from tether.client.sessions import (
    report as report_to_session,
)
from tether.config import TetherConfig, validation_problems
from tether.contracts import DeployRequest, InboxItem, NoteInput, Report, SessionInput
from tether.errors import TetherError
from tether.gateway import hooks
from tether.gateway import mcp as mcp_door
from tether.gateway.founder import cockpit_routes
from tether.gateway.hooks import HookSession
from tether.gateway.transport import SealedTemporal
from tether.hook import claude_code
from tether.hook.claude_code import (
    MAX_INPUT_BYTES,
    BadInput,
    check_translated,
    read_payload,
)
from tether.names import NAME_PATTERN
from tether.store import Store
from tether.store.connection import store_outage
from tether.trust import seals

log = logging.getLogger("tether.gateway")

# How long a token's verdict is kept: a revoked token stops working within this.
TOKEN_CACHE_SECONDS = 5.0
# While PostgreSQL is out, a token it said was valid this recently is still taken: nothing can
# revoke it meanwhile (a revocation is written there), and the agent's hooks keep reaching the
# workflows (its tool calls counted, its gate asked) instead of failing at the door.
TOKEN_OUTAGE_SECONDS = 900.0


class StoreOut(Exception):
    """PostgreSQL could not say whose a token is."""


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
        try:
            agent = await self.store.agent_for_token(token)
        except Exception as exc:
            if not store_outage(exc):
                raise
            if (
                cached is not None
                and cached[1] is not None
                and now - cached[0] < (TOKEN_OUTAGE_SECONDS)
            ):
                return cached[1]
            raise StoreOut(f"PostgreSQL is unreachable ({type(exc).__name__})") from None
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
    try:
        agent = await gateway.agent_for(token)
    except StoreOut as exc:
        raise Unauthorized(503, f"Tether cannot check the agent token now: {exc}") from None
    if agent is None:
        raise Unauthorized(
            401,
            "the agent token is not valid (revoked, rotated or never minted); ask the founder "
            "for a new one: `tether agent token AGENT`",
        )
    if named and named != agent:
        raise Unauthorized(403, f"this token is agent {agent}'s; it cannot speak for agent {named}")
    return agent


def _safe_transcript(payload: dict[str, Any], home: Path, agent: str) -> None:
    """The transcript path comes from the agent: read only a JSON-lines file outside Tether's
    own folder (never a key, never the database's files), or in the agent's own home there
    (`TETHER_HOME/agents/NAME`, where its sandboxed runtime keeps its transcripts), never in
    another agent's."""
    raw = payload.get("transcript_path")
    if not raw:
        return
    path = Path(str(raw)).expanduser()
    try:
        resolved = path.resolve()
        home_resolved = home.resolve()
        own = (home / "agents" / agent).resolve()
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
        or (resolved.is_relative_to(home_resolved) and not resolved.is_relative_to(own))
        or not resolved.is_file()
    ):
        log.warning("ignored transcript path %s: not a .jsonl file Tether may read", raw)
        payload.pop("transcript_path", None)


async def hook(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    runtime = request.path_params["runtime"]
    event = request.path_params["event"]
    try:
        adapter = runtimes.get(runtime)
    except KeyError as exc:
        return _error(404, str(exc.args[0]))
    claude = adapter.events.get(event, event)
    try:
        agent = await _agent(gateway, request, request.query_params.get("agent"))
    except Unauthorized as exc:
        # A tool call is denied and a session told why; other events are refused outright.
        outage = exc.status == 503
        line = f"Tether is unreachable: {exc}" if outage else f"Tether refused: {exc}"
        refusal = claude_code.trouble_answer(claude, line, True, outage=outage)
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
        refusal = claude_code.trouble_answer(
            claude, f"Tether refused the hook input: {exc}", fail_closed, outage=False
        )
        if refusal:
            return _rendered(adapter, claude, refusal)
        return _error(400, f"bad hook input: {exc}")
    _safe_transcript(payload, gateway.home, agent)
    session = payload.get("session_id") or None
    temporal = SealedTemporal(gateway.client, agent, session)
    hook = HookSession(
        agent,
        temporal,
        gateway.task_queue,
        fail_closed,
        env=claude_code.forwarded_env(request.headers),
        home=gateway.home,
        report_timeout=claude_code.report_timeout(request.headers),
        runtime=runtime,
    )
    trouble: list[str] = []
    answer = await hooks.answer(hook, claude, payload, trouble.append)
    for line in trouble:
        log.warning("%s %s of %s: %s", runtime, event, agent, line)
    # The forwarding command prints it for Claude Code's debug log; HTTP hooks ignore it.
    shown = (
        " ".join(trouble[0].split())[:500].encode("ascii", "replace").decode() if trouble else ""
    )
    headers = {claude_code.TROUBLE_HEADER: shown} if shown else None
    return _rendered(adapter, claude, answer, headers)


def _rendered(
    adapter: runtimes.Runtime,
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
        task = _task_id(request) if "task" in request.path_params else None
        result = await act(gateway, agent, request.path_params["action"], data, task)
        return JSONResponse({"agent": agent, "result": result})
    except Unauthorized as exc:
        return _error(exc.status, str(exc))
    except NoSuchRequest as exc:
        return _error(404, str(exc))
    except ValidationError as exc:
        return _error(400, validation_problems(exc))
    except ClientRefused as exc:
        return _error(409, str(exc))
    except TetherError as exc:
        return _error(400, str(exc))


class NoSuchRequest(TetherError):
    pass


# Tasks an agent sees as its work: open ones anyone may claim, and its own.
_CLAIMABLE = ("open",)
_MINE = ("claimed", "verifying", "blocked", "paused")


async def act(
    gateway: Gateway, agent: str, action: str, data: dict[str, Any], task: str | None = None
) -> Any:
    """What an agent asks, for the agent its token names (the HTTP API and the MCP tools): the
    result as JSON, or TetherError / Refused saying why not."""
    client = gateway.client
    with seals.speaking(agent):
        if task is not None:
            if action == "claim":
                return _dump(await task_api.claim_task(client, task, agent))
            if action == "submit":
                note = str(data.get("note") or "")
                return _dump(await task_api.submit_task(client, task, agent, note))
            if action == "show":
                return _dump(await task_api.get_view(client, task))
            raise NoSuchRequest(f"no such request about a task: {action}")
        if action == "note":
            noted = NoteInput.model_validate({k: v for k, v in data.items() if k != "agent"})
            return _dump(await note_session(client, agent, noted))
        if action == "recheck":
            return _dump(await recheck_session(client, agent, f"agent {agent}"))
        if action == "check":
            return _dump(await check_deliverable(client, agent))
        if action == "session":
            if data.get("start"):
                # An MCP client with no hooks: its first look starts (or attaches) the session.
                runtime = str(data.get("runtime") or "mcp")[:40]
                start = SessionInput(agent=agent, runtime=runtime, source="mcp")
                return _dump(await start_session(client, gateway.task_queue, start))
            return _dump(await session_view(client, agent))
        if action == "tasks":
            summaries = await gateway.store.task_summaries()
            return [
                t.model_dump(mode="json")
                for t in summaries
                if (t.state in _CLAIMABLE and t.assignee is None)
                or (t.assignee == agent and t.state in _MINE)
            ]
        if action == "escalate":
            return await _escalate(gateway, agent, data)
        if action == "report":
            # What an agent's own runtime says it spent and holds in context (the Claude Agent
            # SDK's messages): bound, like a hook's, to the runtime session it names.
            report = Report.model_validate({k: v for k, v in data.items() if k != "agent"})
            with seals.speaking(agent, report.external_id):
                return _dump(await report_to_session(client, agent, report))
        if action == "deploy":
            request = DeployRequest.model_validate({**data, "agent": agent})
            return _dump(await request_deploy(client, gateway.task_queue, request))
        raise NoSuchRequest(f"no such request: {action}")


async def _escalate(gateway: Gateway, agent: str, data: dict[str, Any]) -> Any:
    """The agent tells the founder something it cannot decide (or that it is blocked): an item
    in the founder's inbox, and an open question kept for its handoff. Only the founder blocks
    a task; this changes no task's state."""
    text = " ".join(str(data.get("text") or "").split())
    if not text:
        raise TetherError("say what the founder should know: a non-empty text")
    blocked = bool(data.get("blocked"))
    view = await session_view(gateway.client, agent)
    task = view.task_id if view is not None else None
    what = "is blocked" if blocked else "asks the founder"
    item = InboxItem(
        key=f"escalation:{agent}:{hashlib.sha256(text.encode()).hexdigest()[:16]}",
        kind="agent_escalation",
        subject=task or agent,
        title=f"{agent} {what}{f' on task {task}' if task else ''}: {text}"[:500],
        detail={
            "agent": agent,
            "task": task,
            "blocked": blocked,
            "see": f"tether session show {agent}",
        },
    )
    item_id, _ = await gateway.store.post_inbox(item)
    if view is not None and view.state != "ended":
        kind = "question"
        with contextlib.suppress(TetherError):
            await note_session(
                gateway.client, agent, NoteInput(kind=kind, text=f"{what}: {text}"[:1000])
            )
    return {"inbox_item": item_id, "told": "the founder", "task": task}


def _task_id(request: Request) -> str:
    task = request.path_params.get("task") or ""
    if not re.fullmatch(NAME_PATTERN, task):
        raise TetherError(f"{task!r} is not a task id (lower-case letters, digits, '.', '_', '-')")
    return str(task)


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


def build_app(gateway: Gateway) -> Starlette:
    """The gateway's routes; `app.state.mcp` is its MCP server, whose session manager runs while
    the gateway serves (tether/gateway/server.py)."""
    mcp = _mcp_server(gateway)
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/hooks/{runtime}/{event}", hook, methods=["POST"]),
            Route("/v1/tasks/{task}/{action}", agent_call, methods=["POST"]),
            Route("/v1/session/{action}", agent_call, methods=["POST"]),
            Route("/mcp", mcp_door.AgentAuth(_mcp_app(mcp), partial(_mcp_agent, gateway))),
            # The founder's cockpit: its own door, by passkey (tether/gateway/founder.py).
            *cockpit_routes(
                gateway.store, unsealed(gateway.client), gateway.config, gateway.client
            ),
        ]
    )
    app.state.gateway = gateway
    app.state.mcp = mcp
    return app


def _mcp_server(gateway: Gateway) -> MCPServer:
    def door_for(ctx: Any) -> mcp_door.Door:
        return partial(act, gateway, mcp_door.agent_of(ctx))

    return mcp_door.build_server(door_for)


def _mcp_app(server: MCPServer) -> Any:
    # Makes the server's streamable HTTP session manager; its ASGI app is served at /mcp behind
    # the token check. Host checks (DNS rebinding) are off: a browser page cannot present an
    # agent's token, and the gateway is reached by name inside a cluster.
    server.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return StreamableHTTPASGIApp(server.session_manager)


async def _mcp_agent(gateway: Gateway, request: Request) -> str:
    try:
        return await _agent(gateway, request, None)
    except Unauthorized as exc:
        raise PermissionError(str(exc)) from exc
