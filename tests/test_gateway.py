"""The gateway: the agents' only door. Each request speaks for the agent its token names, and
for no other; what it forwards is sealed for that agent, so a workflow refuses it elsewhere."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from temporalio.client import Client

from tests.support.helpers import FakeForge, eventually
from tests.support.sessions import HOOK_HOME, run_hook, running_team
from tether import client as api
from tether.contracts import ShellCheck, TaskSpec
from tether.hook.wire import http_request


async def post(url: str, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, raw, _ = await asyncio.to_thread(
        http_request, "POST", url, json.dumps(body).encode(), 30, headers
    )
    return status, json.loads(raw) if raw.strip() else None


PRE = {"hook_event_name": "PreToolUse", "session_id": "cc-1", "tool_name": "Bash"}


async def test_a_request_speaks_only_for_the_agent_its_token_names(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        assert team.gateway is not None
        coder, devops = team.agent("coder"), team.agent("devops")
        url = team.gateway.url
        token = await team.gateway.token(coder)

        # No token, or one that is not ours: a tool call is denied, a report refused.
        for sent in (None, "tether_agent_not-a-real-one", "Basic abc"):
            status, answer = await post(f"{url}/hooks/claude-code/PreToolUse", PRE, sent)
            assert status == 200
            decision = answer["hookSpecificOutput"]
            assert decision["permissionDecision"] == "deny"
            assert "agent token" in decision["permissionDecisionReason"]
            status, answer = await post(f"{url}/hooks/claude-code/PostToolUse", PRE, sent)
            assert status == 401 and "tether agent token" in answer["error"]

        # The token names coder: speaking for devops is refused, whatever the request says.
        status, answer = await post(
            f"{url}/hooks/claude-code/PostToolUse?agent={devops}", PRE, token
        )
        assert (
            status == 403
            and f"agent {coder}'s; it cannot speak for agent {devops}" in (answer["error"])
        )
        spec = TaskSpec(id=f"gw-{coder}", title="t", checks=[ShellCheck(command="true")])
        await api.create_task(client, team.task_queue, spec)
        status, answer = await post(f"{url}/v1/tasks/{spec.id}/claim", {"agent": devops}, token)
        assert status == 403
        status, answer = await post(f"{url}/v1/tasks/{spec.id}/claim", {}, token)
        assert status == 200 and answer["result"]["assignee"] == coder

        # A revoked token stops working within the gateway's cache time.
        await team.store.revoke_agent_tokens(coder, "founder")

        async def refused() -> bool:
            status, _ = await post(f"{url}/v1/session/session", {}, token)
            return status == 401

        await eventually(refused, "the revoked token to be refused", seconds=10)


async def test_a_report_from_another_runtime_session_is_refused_by_the_session(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = team.agent("coder")
        start = await run_hook("SessionStart", coder, {"session_id": "cc-1"}, team)
        assert start.code == 0
        tool = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_response": {}}
        mine = await run_hook("PostToolUse", coder, {"session_id": "cc-1", **tool}, team)
        other = await run_hook("PostToolUse", coder, {"session_id": "cc-2", **tool}, team)
        assert mine.code == 0 and other.code == 0
        # Only cc-1's report counted; cc-2 is told at its next tool call.
        view = await api.session_view(client, coder)
        assert view is not None and view.governor.reports == 1
        pre = {"session_id": "cc-2", "tool_name": "Bash", "tool_input": {"command": "ls"}}
        denied = await run_hook("PreToolUse", coder, pre, team, "--fail-closed")
        assert denied.answer is not None
        reason = denied.answer["hookSpecificOutput"]["permissionDecisionReason"]
        assert "already has an open session (cc-1)" in reason


async def test_the_gateway_reads_no_transcript_path_but_an_agents_jsonl(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """The transcript path comes from the agent: pointed at a key file, nothing is read."""
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        assert team.gateway is not None
        coder = team.agent("coder")
        start = await run_hook("SessionStart", coder, {"session_id": "cc-1"}, team)
        assert start.code == 0
        secret = tmp_path / "founder.key"
        secret.write_text('{"type": "assistant", "message": {"usage": {"input_tokens": 99}}}\n')
        tool = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_response": {}}
        sent = {"session_id": "cc-1", "transcript_path": str(secret), **tool}
        assert (await run_hook("PostToolUse", coder, sent, team)).code == 0
        view = await api.session_view(client, coder)
        assert view is not None and view.governor.reports == 1
        assert view.governor.context_tokens in (None, 0)
        # Nor another agent's transcript under TETHER_HOME; its own home there is read (where a
        # sandboxed runtime keeps its transcripts).
        line = '{"type": "assistant", "message": {"usage": {"input_tokens": 4321}}}\n'
        for agent in (team.agent("devops"), coder):
            transcript = HOOK_HOME / "agents" / agent / ".claude" / "projects" / "t.jsonl"
            transcript.parent.mkdir(parents=True, exist_ok=True)
            transcript.write_text(line)
            sent = {"session_id": "cc-1", "transcript_path": str(transcript), **tool}
            assert (await run_hook("PostToolUse", coder, sent, team)).code == 0
            view = await api.session_view(client, coder)
            assert view is not None
            read = view.governor.context_tokens == 4321
            assert read == (agent == coder), (agent, view.governor.context_tokens)
