"""Messages that interleave: handlers that await are serialised and re-check the state, the
read model never goes backwards, and a workflow tells another workflow itself (a client that
dies after its update loses nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowUpdateStage

from tests.support.helpers import FakeForge, clean_environment, eventually
from tests.support.payloads import FORBIDDEN, KUBECTL_RETRIES, failure
from tests.support.sessions import REJECTED_TOKEN, TOKEN_ENV, VALID_TOKEN, running_team
from tether import client as api
from tether import constants
from tether.contracts import (
    EndSessionInput,
    Report,
    SessionInput,
    SessionState,
    ShellCheck,
    TaskSpec,
    ToolCall,
)
from tether.hook.fingerprint import claude_code_tool_call
from tether.signing import generate, load_private, order
from workflows.session import AgentSessionWorkflow


async def test_an_end_that_arrives_while_a_recheck_probes_is_never_undone(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, REJECTED_TOKEN)
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = team.agent("coder")
        started = await api.start_session(
            client, team.task_queue, SessionInput(agent=coder, external_id="cc-1")
        )
        assert started.state == SessionState.BLOCKED
        # The founder fixes the token and rechecks, but the forge hangs on the probe...
        monkeypatch.setenv(TOKEN_ENV, VALID_TOKEN)
        forge.open.clear()
        recheck = asyncio.create_task(api.recheck_session(client, coder, "founder"))

        async def probing() -> bool:
            return forge.waiting > 0

        await eventually(probing, "the recheck to probe the forge")
        # ...and meanwhile the session is ended.
        handle = client.get_workflow_handle_for(
            AgentSessionWorkflow.run, constants.session_workflow_id(coder)
        )
        end = await handle.start_update(
            AgentSessionWorkflow.end,
            EndSessionInput(reason="the founder ends it", by="founder"),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )

        async def ended() -> bool:
            view = await api.session_view(client, coder)
            return view is not None and view.state == SessionState.ENDED

        # Unserialised, the end runs its course here; serialised, it waits for the recheck.
        with contextlib.suppress(AssertionError):
            await eventually(ended, "the end to run", seconds=3)
        forge.open.set()

        with pytest.raises(api.Refused, match="ended while its credentials were being rechecked"):
            await recheck
        assert (await end.result()).state == SessionState.ENDED
        final = await handle.result()
        assert final.state == SessionState.ENDED
        assert final.end_reason == "the founder ends it"
        rows = await team.store.list_sessions(agent=coder)
        assert [(r["state"], r["seq"]) for r in rows] == [("ended", final.seq)]


async def test_a_release_interleaved_with_reports_leaves_postgresql_at_the_newest_state(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
) -> None:
    key_path, public = generate(tmp_path / "founder")
    async with running_team(
        client, fresh_db, tmp_path, forge, {"founder": {"public_key": public}}
    ) as team:
        devops, q = team.agent("devops"), team.task_queue
        task_id = f"rollout-{devops.rsplit('-', 1)[1]}"
        await api.create_task(
            client, q, TaskSpec(id=task_id, title="Roll out", checks=[ShellCheck(command="true")])
        )
        await api.start_session(client, q, SessionInput(agent=devops, external_id="cc-1"))
        await api.claim_task(client, task_id, devops)

        def call(command: str, i: int) -> Report:
            body = {**failure(command, f"Exit code 1\n{FORBIDDEN}", f"toolu_{i}")}
            tool_call = claude_code_tool_call("PostToolUseFailure", body)
            return Report(tool_call=ToolCall.model_validate(tool_call), external_id="cc-1")

        for i, command in enumerate(KUBECTL_RETRIES):
            answer = await api.report(client, devops, call(command, i))
        assert answer.deny is not None and "failed 5 times" in answer.deny

        # The founder's signed unblock and a burst of reports race each other.
        signed = order("unblock", task_id, "founder", "go on", load_private(key_path))
        reads = [
            Report(
                tool_call=ToolCall(tool="Read", action="Read", ok=True, input_digest=f"r{i}"),
                external_id="cc-1",
            )
            for i in range(12)
        ]
        await asyncio.gather(
            api.unblock_task(client, task_id, "founder", "go on", order=signed),
            *(api.report(client, devops, r) for r in reads),
        )

        async def released() -> bool:
            view = await api.session_view(client, devops)
            return view is not None and view.governor.hold is None

        await eventually(released, "the session to be released")
        handle = client.get_workflow_handle_for(
            AgentSessionWorkflow.run, constants.session_workflow_id(devops)
        )
        # Every write has landed once `end` returns; the row is the newest snapshot.
        view = await handle.execute_update(
            AgentSessionWorkflow.end, EndSessionInput(reason="done", by="agent")
        )
        rows = await team.store.list_sessions(agent=devops)
        assert [(r["state"], r["seq"], r["task_id"]) for r in rows] == [
            ("ended", view.seq, task_id)
        ]
        # A write of an older snapshot, however late, changes nothing.
        info = await handle.describe()
        stale = view.model_copy(update={"seq": view.seq - 1, "state": SessionState.ACTIVE})
        await team.store.record_session(stale, info.id, info.run_id or "")
        reopened = view.model_copy(update={"seq": view.seq + 1, "state": SessionState.ACTIVE})
        await team.store.record_session(reopened, info.id, info.run_id or "")
        rows = await team.store.list_sessions(agent=devops)
        assert [(r["state"], r["seq"]) for r in rows] == [("ended", view.seq)]


CLAIM_AND_DIE = """
import asyncio, os, signal, sys
from tests.support import keys
from tether.client import connect
from tether.contracts import ClaimInput
from workflows.task import TaskWorkflow

async def main() -> None:
    address, task_id, agent = sys.argv[1:4]
    client = await connect(address, "default", signer=keys.FOUNDER)
    handle = client.get_workflow_handle_for(TaskWorkflow.run, "task-" + task_id)
    await handle.execute_update(TaskWorkflow.claim, ClaimInput(agent=agent))
    print("claimed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # dies before it could tell anyone else

asyncio.run(main())
"""


async def test_the_session_learns_of_a_claim_when_the_client_dies_after_the_update(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    temporal_address: str,
    valid_token: None,
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, q = team.agent("coder"), team.task_queue
        task_id = f"fix-{coder.rsplit('-', 1)[1]}"
        spec = TaskSpec(id=task_id, title="Fix", kind="bugfix", checks=[ShellCheck(command="true")])
        await api.create_task(client, q, spec)
        await api.start_session(client, q, SessionInput(agent=coder, external_id="cc-1"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLAIM_AND_DIE,
            temporal_address,
            task_id,
            coder,
            env=clean_environment(),
            cwd=str(Path(__file__).resolve().parent.parent),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert out.decode().strip() == "claimed", err.decode()
        assert proc.returncode == -9

        async def governs() -> bool:
            view = await api.session_view(client, coder)
            return view is not None and view.task_id == task_id

        await eventually(governs, "the session to govern the claimed task")
