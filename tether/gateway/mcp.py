"""Tether as an MCP server, so any MCP client can take part (issue 17): over stdio (`tether
mcp`, run in the agent's environment: it speaks to the gateway with TETHER_AGENT_TOKEN) and over
streamable HTTP on the gateway itself (`/mcp`, `Authorization: Bearer <agent token>`). Built on
the official MCP Python SDK.

The agent is the one the connection's token names, never an argument: no tool takes an agent,
and every call goes through the same door as the agent's `tether` commands (the gateway's
`act`), which seals it for that agent alone.

Tools: read_brief (starts or attaches the agent's session), list_tasks, claim_task,
submit_task (answers with the checks' evidence), block (tells the founder, with a reason),
escalate, note (a decision or open question for the handoff), request_deployment, and
`task://{task_id}` resources with each task's spec and state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.errors import TetherError
from tether.names import NAME_PATTERN

# What a tool asks of the door: (action, body, task) -> the result as JSON.
Door = Callable[[str, dict[str, Any], str | None], Awaitable[Any]]
AGENT_SCOPE_KEY = "tether.agent"

INSTRUCTIONS = (
    "Tether governs this agent's work. Read your brief first (read_brief): it says what is in "
    "flight, what you may claim, and whether your credentials work. Claim a task before working "
    "on it; submit it when done (Tether runs its checks itself: 'done' is what they say). When "
    "you are blocked or need a decision, say so (block, escalate) instead of retrying."
)


def build_server(door_for: Callable[[Context], Door]) -> MCPServer:
    """The MCP server; `door_for(ctx)` is how this connection's agent reaches the gateway."""
    server = MCPServer(name="tether", instructions=INSTRUCTIONS)

    async def ask(ctx: Context, action: str, body: dict[str, Any], task: str | None = None) -> Any:
        if task is not None and not re.fullmatch(NAME_PATTERN, task):
            raise ToolError(
                f"{task!r} is not a task id (lower-case letters, digits, '.', '_', '-'); "
                "list_tasks shows the ones you may claim"
            )
        try:
            return await door_for(ctx)(action, body, task)
        except TetherError as exc:
            # The client sees the reason as the tool's error result.
            raise ToolError(str(exc)) from exc

    @server.tool(description="Your startup brief: start (or attach to) your Tether session.")
    async def read_brief(ctx: Context) -> str:
        view = await ask(ctx, "session", {"start": True, "runtime": "mcp"})
        if view.get("state") == "blocked":
            return f"Blocked: {view.get('notice') or 'see the founder'}"
        brief = view.get("brief") or {}
        return str(brief.get("text") or "Tether produced no brief.")

    @server.tool(description="Tasks you may claim (open, unassigned) and the ones you hold.")
    async def list_tasks(ctx: Context) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await ask(ctx, "tasks", {})
        return found

    @server.tool(description="Claim a task: exactly one agent holds it.")
    async def claim_task(task_id: str, ctx: Context) -> dict[str, Any]:
        view: dict[str, Any] = await ask(ctx, "claim", {}, task_id)
        return {"task": task_id, "state": view.get("state"), "assignee": view.get("assignee")}

    @server.tool(
        description="Say a task is done: Tether runs its checks and answers with their evidence."
    )
    async def submit_task(task_id: str, ctx: Context, note: str = "") -> dict[str, Any]:
        result: dict[str, Any] = await ask(ctx, "submit", {"note": note}, task_id)
        return result

    @server.tool(description="Tell the founder you cannot go on, and why (no task changes state).")
    async def block(reason: str, ctx: Context) -> dict[str, Any]:
        told: dict[str, Any] = await ask(ctx, "escalate", {"text": reason, "blocked": True})
        return told

    @server.tool(description="Ask the founder for a decision you must not take yourself.")
    async def escalate(message: str, ctx: Context) -> dict[str, Any]:
        told: dict[str, Any] = await ask(ctx, "escalate", {"text": message})
        return told

    @server.tool(description="Keep a decision, an open question or a note for your handoff.")
    async def note(
        text: str, ctx: Context, kind: Literal["decision", "question", "note"] = "decision"
    ) -> str:
        view = await ask(ctx, "note", {"kind": kind, "text": text})
        return f"noted ({len((view.get('governor') or {}).get('notes') or [])} notes kept)"

    @server.tool(
        description="Ask to deploy a service at an exact commit, tag or branch; the founder "
        "approves, and Tether refuses what would roll back newer work."
    )
    async def request_deployment(
        service: str,
        ref: str,
        ctx: Context,
        environment: Literal["staging", "production"] = "staging",
        reason: str = "",
    ) -> dict[str, Any]:
        body = {"service": service, "ref": ref, "environment": environment, "reason": reason}
        view: dict[str, Any] = await ask(ctx, "deploy", body)
        keep = ("deployment_id", "state", "commit", "reason", "waiting_for")
        return {k: view.get(k) for k in keep}

    @server.resource(
        "task://{task_id}",
        description="A task's spec (title, checks, artifact) and its state.",
        mime_type="application/json",
    )
    async def task_spec(task_id: str, ctx: Context) -> str:
        return json.dumps(await ask(ctx, "show", {}, task_id), indent=2)

    return server


# --- over HTTP, on the gateway ------------------------------------------------------------------


class AgentAuth:
    """The `/mcp` endpoint's door keeper: a request without a valid agent token is answered 401;
    with one, the agent it names travels in the ASGI scope to the tools (never from the body)."""

    def __init__(self, app: ASGIApp, agent_for: Callable[[Request], Awaitable[str]]) -> None:
        self.app = app
        self.agent_for = agent_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            agent = await self.agent_for(Request(scope))
        except PermissionError as exc:
            response = JSONResponse({"error": str(exc)}, status_code=401)
            await response(scope, receive, send)
            return
        await self.app({**scope, AGENT_SCOPE_KEY: agent}, receive, send)


def agent_of(ctx: Context) -> str:
    """The agent of this connection's request (set by AgentAuth)."""
    request = ctx.request_context.request
    scope = getattr(request, "scope", None) or {}
    agent = scope.get(AGENT_SCOPE_KEY)
    if not agent:
        raise TetherError("this MCP request carries no agent token")
    return str(agent)
