"""Tether's guardrails for the Claude Agent SDK (tether/agent_sdk.py), through the real SDK
(`claude-agent-sdk` from PyPI) driving the pinned Claude Code CLI against the scripted model:
the brief at start, the loop stopped at the fifth identical failure by the SDK's own hook
callbacks, the next tool call denied with the reason, and the spend read from the SDK's
messages counted once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from claude_agent_sdk import AssistantMessage, PermissionResultDeny, ResultMessage, query
from temporalio.client import Client

from tests.support.claude_code import BINARY, ensure_claude_code
from tests.support.helpers import FakeForge, eventually
from tests.support.model_api import MODEL, ModelApi, Turn, Usage
from tests.support.payloads import KUBECTL_RETRIES, forbidden_kubectl
from tests.support.sessions import running_team
from tether import client as api
from tether.agent_sdk import Tether
from tether.config import DEFAULT_PRICES
from tether.contracts import ShellCheck, TaskSpec, TaskState, TokenUsage


async def test_the_agent_sdk_is_governed_by_tethers_hooks_and_its_spend_counted_once(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    ensure_claude_code()
    bin_dir = forbidden_kubectl(tmp_path / "bin")
    # Five identical failures, then a sixth try the hooks must deny, then the model gives up.
    turns = [Turn.bash(c, Usage(20_000, 40)) for c in KUBECTL_RETRIES]
    turns += [Turn.bash(KUBECTL_RETRIES[0], Usage(21_000, 40)), Turn.say("I give up.")]
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        assert team.gateway is not None
        devops = team.agent("devops")
        task_id = f"rollout-{devops.rsplit('-', 1)[1]}"
        spec = TaskSpec(id=task_id, title="Roll out", checks=[ShellCheck(command="true")])
        await api.create_task(client, team.task_queue, spec)
        await api.claim_task(client, task_id, devops)
        tether = Tether(devops, token=await team.gateway.token(devops), gateway=team.gateway.url)
        brief = await tether.start()
        assert brief.startswith(f"Tether startup brief for {devops}"), brief
        assert f"{task_id}" in brief

        messages: list[Any] = []
        with ModelApi(turns) as model:
            options = tether.options(
                cwd=str(team.repo),
                cli_path=str(BINARY),
                model=MODEL,
                permission_mode="bypassPermissions",
                env={"HOME": str(tmp_path / "claude-home"), **model.claude_env(bin_dir)},
            )
            async for message in query(prompt=f"{brief}\n\nRoll out api.", options=options):
                messages.append(message)
                await tether.observe(message)
            requests = model.main_requests()
        # A permission prompt (a mode that asks) is answered the same way.
        denied = await tether.can_use_tool("Bash", {"command": KUBECTL_RETRIES[0]}, None)
        assert isinstance(denied, PermissionResultDeny)
        assert denied.message.startswith("stopped by Tether: kubectl set failed 5 times")

        view = await api.session_view(client, devops)
        assert view is not None and view.external_id == tether.session_id
        hold = view.governor.hold
        assert hold is not None and hold.kind == "loop", hold
        assert hold.reason.startswith("kubectl set failed 5 times the same way")
        # The sixth kubectl was denied before it ran: the model read Tether's reason.
        sixth = [str(r.last_tool_results()) for r in requests[6:7]]
        assert sixth and "stopped by Tether: kubectl set failed 5 times" in sixth[0], sixth

        async def blocked() -> bool:
            record = await team.store.get_task(task_id)
            return record is not None and record.task.state == TaskState.BLOCKED

        await eventually(blocked, "the task to be blocked")

        # Spend: the seven turns' tokens, each once (the SDK's messages, not the transcript).
        assistant = [m for m in messages if isinstance(m, AssistantMessage)]
        assert assistant and any(isinstance(m, ResultMessage) for m in messages)
        price = DEFAULT_PRICES["claude-sonnet"]
        scripted = price.cost(TokenUsage(input=5 * 20_000 + 21_000 + 1000, output=7 * 40 + 10))
        # 5 x 20,000 + 21,000 + the last answer's 1,000 input tokens, and the CLI's own small
        # side request: each once (twice would be 244,000).
        assert 122_000 <= view.governor.tokens.input < 122_100, view.governor.tokens
        assert abs(view.governor.cost_usd - scripted) < 0.01 * scripted, view.governor.cost_usd
        assert view.governor.context_tokens is not None

        # A report the gateway did not take travels with the next one: no spend is lost.
        current = await api.session_view(client, devops)
        assert current is not None
        before = current.governor.tokens.input
        gateway, tether.gateway = tether.gateway, "http://127.0.0.1:9"
        late = AssistantMessage(
            content=[], model=MODEL, usage={"input_tokens": 700}, message_id="msg_late_1"
        )
        assert await tether.observe(late) is None
        tether.gateway = gateway
        later = AssistantMessage(
            content=[], model=MODEL, usage={"input_tokens": 300}, message_id="msg_late_2"
        )
        assert await tether.observe(later) is not None
        after = await api.session_view(client, devops)
        assert after is not None and after.governor.tokens.input == before + 1000
        await tether.end()
