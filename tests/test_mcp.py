"""Tether as an MCP server (issue 17), driven by the official MCP Python SDK's client: over stdio
(`tether mcp`, a real subprocess with the agent's token in its environment) and over streamable
HTTP on the real gateway (`/mcp`). The agent is the one the token names: a tool call cannot
speak for another, and a request without a valid token is refused before any tool runs."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from temporalio.client import Client

from tests.support.helpers import FakeForge, clean_environment, commit_file
from tests.support.sessions import HOOK_HOME, Team, running_team
from tether import client as api
from tether.contracts import ShellCheck, TaskSpec, TaskState


@asynccontextmanager
async def over_stdio(team: Team, token: str) -> AsyncIterator[ClientSession]:
    assert team.gateway is not None
    env = clean_environment(
        TETHER_GATEWAY_URL=team.gateway.url,
        TETHER_AGENT_TOKEN=token,
        TETHER_HOME=str(HOOK_HOME),
    )
    params = StdioServerParameters(command=sys.executable, args=["-m", "tether", "mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def over_http(team: Team, token: str) -> AsyncIterator[ClientSession]:
    assert team.gateway is not None
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with (
        http,
        streamable_http_client(f"{team.gateway.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _json(result: Any) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        found = result.structured_content
        return found.get("result", found) if set(found) == {"result"} else found
    return json.loads(result.content[0].text)


def _text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def _a_day_of_work(
    client: Client,
    team: Team,
    connect: Callable[[Team, str], Any],
    tmp_path: Path,
) -> None:
    """One agent through MCP only: brief, tasks, claim, a failing then a passing submit, a
    note, an escalation, a deployment request; and another agent's token changes nothing of
    this agent's."""
    assert team.gateway is not None
    coder, devops = team.agent("coder"), team.agent("devops")
    flag = tmp_path / f"ready-{connect.__name__}"
    task = f"fix-{connect.__name__.replace('_', '-')}-{coder[-8:]}"
    spec = TaskSpec(
        id=task,
        title="Fix the checkout",
        checks=[ShellCheck(name="ready", command=f"test -f {flag}")],
    )
    await api.create_task(client, team.task_queue, spec)
    async with connect(team, await team.gateway.token(coder)) as mcp:
        tools = {t.name for t in (await mcp.list_tools()).tools}
        assert tools == {
            "read_brief",
            "list_tasks",
            "claim_task",
            "submit_task",
            "block",
            "escalate",
            "note",
            "request_deployment",
        }
        # No tool takes an agent: the token is the only identity.
        for tool in (await mcp.list_tools()).tools:
            assert "agent" not in (tool.input_schema.get("properties") or {}), tool.name

        brief = _text(await mcp.call_tool("read_brief", {}))
        assert brief.startswith(f"Tether startup brief for {coder}"), brief
        # The open task is offered, with the command to claim it.
        assert f"Best open task for you: {task}: Fix the checkout" in brief, brief
        view = await api.session_view(client, coder)
        assert view is not None and view.runtime == "mcp" and view.state == "active"

        listed = _json(await mcp.call_tool("list_tasks", {}))
        assert task in [t["id"] for t in listed]
        claimed = _json(await mcp.call_tool("claim_task", {"task_id": task}))
        assert claimed == {"task": task, "state": "claimed", "assignee": coder}

        spec_text = (await mcp.read_resource(f"task://{task}")).contents[0]
        assert json.loads(getattr(spec_text, "text", "{}"))["spec"]["title"] == "Fix the checkout"

        # "Done" is what the checks say: the first submit fails with the evidence.
        failed = _json(await mcp.call_tool("submit_task", {"task_id": task, "note": "all done"}))
        assert failed["done"] is False and failed["evidence"][0]["passed"] is False
        flag.write_text("ok")
        passed = _json(await mcp.call_tool("submit_task", {"task_id": task}))
        assert passed["done"] is True

        noted = _text(await mcp.call_tool("note", {"text": "totals in cents", "kind": "decision"}))
        assert noted.startswith("noted")
        told = _json(await mcp.call_tool("block", {"reason": "the staging DB is down"}))
        assert told["told"] == "the founder"
        items = [i for i in await team.store.inbox() if i.kind == "agent_escalation"]
        assert any(
            i.title == f"{coder} is blocked on task {task}: the staging DB is down"
            or i.title == f"{coder} is blocked: the staging DB is down"
            for i in items
        ), [i.title for i in items]

        # Bad input gets the reason, not a crash.
        bad = await mcp.call_tool("claim_task", {"task_id": "NOT A TASK"})
        assert bad.is_error and "is not a task id" in _text(bad)
        # A deployment of a service Tether does not know is refused, saying so.
        refused = _json(
            await mcp.call_tool("request_deployment", {"service": "nope", "ref": "main"})
        )
        assert refused["state"] == "refused", refused
        assert "service 'nope' is not in tether.toml" in str(refused["reason"]), refused

    view = await api.session_view(client, coder)
    assert view is not None and "decision: totals in cents" in view.governor.notes
    record = await team.store.get_task(task)
    assert record is not None and record.task.state == TaskState.DONE
    # The other agent's token speaks for the other agent only: its claim is its own.
    other = f"other-{connect.__name__.replace('_', '-')}-{coder[-8:]}"
    other_spec = TaskSpec(id=other, title="Other", checks=[ShellCheck(command="true")])
    await api.create_task(client, team.task_queue, other_spec)
    async with connect(team, await team.gateway.token(devops)) as mcp:
        claimed = _json(await mcp.call_tool("claim_task", {"task_id": other}))
        assert claimed["assignee"] == devops


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_an_agent_works_a_task_through_mcp_alone(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    transport: str,
) -> None:
    connect = over_stdio if transport == "stdio" else over_http
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        commit_file(team.repo, "README.md", "app\n", "start")
        await _a_day_of_work(client, team, connect, tmp_path)


async def test_the_mcp_endpoint_refuses_a_request_without_a_valid_token(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        assert team.gateway is not None
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient() as http:
            for auth in ({}, {"Authorization": "Bearer tether_agent_forged"}):
                answer = await http.post(
                    f"{team.gateway.url}/mcp", json=body, headers={**headers, **auth}
                )
                assert answer.status_code == 401, answer.text
                assert "token" in answer.json()["error"]
