"""Messages that interleave: handlers that await are serialised and re-check the state, the
read model never goes backwards, and a workflow tells another workflow itself (a client that
dies after its update loses nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowUpdateStage
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.messages import MessageActivities
from tests.support import keys
from tests.support.helpers import FakeForge, clean_environment, eventually
from tests.support.payloads import FORBIDDEN, KUBECTL_RETRIES, failure
from tests.support.runner import set_runner
from tests.support.sessions import REJECTED_TOKEN, TOKEN_ENV, VALID_TOKEN, running_team
from tether import client as api
from tether import constants
from tether.client.connection import sealed
from tether.contracts import (
    DeliverInput,
    EndSessionInput,
    FounderActionInput,
    GovernorHoldInput,
    LockInput,
    LockRelease,
    LockRequest,
    LockView,
    Report,
    RunRequest,
    SessionInput,
    SessionState,
    ShellCheck,
    StopInput,
    TaskSpec,
    TaskState,
    ToolCall,
)
from tether.hook.fingerprint import claude_code_tool_call
from tether.store import Store
from tether.trust.signing import generate, load_private, order
from workflows.guard import MessageGuard
from workflows.lock import ServiceLockWorkflow
from workflows.session import AgentSessionWorkflow
from workflows.task import TaskWorkflow


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


async def test_two_runs_asked_while_the_session_starts_start_one_process(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """Two `tether run`s arrive while the session is still starting (its credential probe
    hangs on the forge): both pass their validator, both wait; once it has started, one starts
    the agent's process and the other is refused, re-checked after its wait."""
    starts = tmp_path / "starts"
    program = tmp_path / "agent.py"
    program.write_text(
        "import os, time\n"
        f"with open({str(starts)!r}, 'a') as out:\n"
        "    out.write(f'{os.getpid()}\\n')\n"
        "time.sleep(300)\n"
    )
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = set_runner(
            team, "coder", "command", isolation="none", command=[sys.executable, str(program)]
        )
        forge.open.clear()
        runs = [
            asyncio.create_task(
                api.run_agent(client, team.task_queue, coder, "command", RunRequest(prompt=p))
            )
            for p in ("first", "second")
        ]

        async def probing() -> bool:
            return forge.waiting > 0

        await eventually(probing, "the session's start to probe the forge")
        await asyncio.sleep(1)  # both updates are in, waiting for the start
        forge.open.set()
        done = await asyncio.gather(*runs, return_exceptions=True)
        refused = [d for d in done if isinstance(d, BaseException)]
        assert len(refused) == 1 and "already running" in str(refused[0]), done
        await eventually(starts.exists, "the agent to start")
        await asyncio.sleep(3)  # a second process would have written by now
        assert len(starts.read_text().split()) == 1
        await api.stop_agent(client, coder, StopInput(reason="test over"))


async def _held_by_the_governor(client: Client, team: Any) -> tuple[str, str]:
    """A task claimed by devops and held by its governor (a loop): the founder's order lifts it."""
    devops, q = team.agent("devops"), team.task_queue
    task_id = f"held-{devops.rsplit('-', 1)[1]}"
    spec = TaskSpec(id=task_id, title="Roll out", checks=[ShellCheck(command="true")])
    await api.create_task(client, q, spec)
    await api.claim_task(client, task_id, devops)
    hold = GovernorHoldInput(kind="loop", agent=devops, reason="kubectl set failed 5 times")
    await client.get_workflow_handle(f"task-{task_id}").signal("governor_hold", hold)

    async def blocked() -> bool:
        return (await api.get_view(client, task_id)).state == TaskState.BLOCKED

    await eventually(blocked, "the governor's hold")
    return devops, task_id


@contextlib.asynccontextmanager
async def orders_judged_slowly(database: str) -> AsyncIterator[None]:
    """While inside: the founder orders' log is locked, so every order's judging waits."""
    conn = await asyncpg.connect(database)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE founder_orders IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def _judged_together(
    client: Client, database: str, task_id: str, key: Any, actions: list[tuple[Any, str, str]]
) -> list[Any]:
    """Each (update, action, reason) as the founder signs it, all admitted while their orders
    wait to be judged (the log of orders locked); their outcomes, a refusal as its exception."""
    handle = client.get_workflow_handle_for(TaskWorkflow.run, f"task-{task_id}")
    async with orders_judged_slowly(database):
        updates = [
            await handle.start_update(
                update,
                FounderActionInput(
                    by="founder", reason=why, order=order(action, task_id, "founder", why, key)
                ),
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            )
            for update, action, why in actions
        ]
    return await asyncio.gather(*(u.result() for u in updates), return_exceptions=True)


async def test_two_unblocks_of_a_governors_hold_release_it_once(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """Two signed unblocks arrive together and both wait while their orders are judged: the
    first releases the task to its agent; the second, checked again, is refused. Before, the
    second sent the task to OPEN with its assignee still set."""
    key_path, public = generate(tmp_path / "founder")
    extra = {"founder": {"public_key": public}}
    async with running_team(client, fresh_db, tmp_path, forge, extra) as team:
        devops, task_id = await _held_by_the_governor(client, team)
        unblocks = [(TaskWorkflow.unblock, "unblock", why) for why in ("fixed", "fixed, I said")]
        done = await _judged_together(client, fresh_db, task_id, load_private(key_path), unblocks)
        refused = [d for d in done if isinstance(d, BaseException)]
        assert len(refused) == 1 and "not blocked" in str(refused[0].__cause__ or refused[0])
        view = await api.get_view(client, task_id)
        assert (view.state, view.assignee) == (TaskState.CLAIMED, devops)


async def test_a_cancel_while_an_unblock_is_judged_is_never_undone(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """An unblock waits for its order to be judged, and the founder cancels meanwhile: the
    actions take turns, and the task ends CANCELLED whichever order was judged first."""
    key_path, public = generate(tmp_path / "founder")
    extra = {"founder": {"public_key": public}}
    async with running_team(client, fresh_db, tmp_path, forge, extra) as team:
        _, task_id = await _held_by_the_governor(client, team)
        both = [
            (TaskWorkflow.unblock, "unblock", "fixed"),
            (TaskWorkflow.cancel, "cancel", "not needed"),
        ]
        await _judged_together(client, fresh_db, task_id, load_private(key_path), both)
        assert (await api.get_view(client, task_id)).state == TaskState.CANCELLED
        record = await team.store.get_task(task_id)
        assert record is not None and record.events[-1].kind == "cancelled"


@workflow.defn(name="WaitsForItsLock")
class WaitsForItsLock:
    """Stands in for a deployment waiting for its lane: any running workflow can be told."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def test_a_release_while_the_lock_is_being_granted_frees_the_lane(
    client: Client, store: Store, task_queue: str
) -> None:
    """The lock pops the next deployment and tells it `lock_granted`; that deployment releases
    (done, or gone) before the telling has finished. The release is kept: the lane is free at
    once, not held for the 10-minute lease of a holder that already left."""
    arrived, go_on = asyncio.Event(), asyncio.Event()
    real = MessageActivities(store)

    @activity.defn(name="deliver_message")
    async def deliver_slowly(inp: DeliverInput) -> bool:
        if inp.signal == "lock_granted":
            arrived.set()
            await go_on.wait()
        return await real.deliver_message(inp)

    worker_client = sealed(client, keys.WORKER)
    service = f"lane-{uuid.uuid4().hex[:8]}"
    async with (
        Worker(
            worker_client,
            task_queue=task_queue,
            workflows=[ServiceLockWorkflow],
            activities=[deliver_slowly],
            interceptors=[MessageGuard(keys.TRUST)],
        ),
        Worker(
            client,
            task_queue=f"{task_queue}-waiters",
            workflows=[WaitsForItsLock],
            # The stand-in is defined here, in a test module the sandbox would import again.
            workflow_runner=UnsandboxedWorkflowRunner(),
        ),
    ):
        waiter = await client.start_workflow(
            "WaitsForItsLock", id=f"deploy-{service}", task_queue=f"{task_queue}-waiters"
        )
        lock = await worker_client.start_workflow(
            ServiceLockWorkflow.run,
            LockInput(service=service),
            id=f"lock-{service}",
            task_queue=task_queue,
        )
        request = LockRequest(
            deployment_id=waiter.id,
            service=service,
            agent="devops",
            requested_at=datetime.now(UTC),
        )
        await lock.signal(ServiceLockWorkflow.acquire, request)
        await asyncio.wait_for(arrived.wait(), 30)
        await lock.signal(ServiceLockWorkflow.release, LockRelease(deployment_id=waiter.id))
        go_on.set()

        async def settled() -> LockView | None:
            view = await lock.query(ServiceLockWorkflow.queue)
            return view if view.granted == 1 else None

        view = await eventually(settled, "the grant to be told")
        assert view.holder is None and view.lease_until is None
        await waiter.terminate()
        await lock.terminate()
