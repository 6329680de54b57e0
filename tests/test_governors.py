"""The governors end to end: real Claude Code hook payloads replayed through `tether hook`, a
real transcript file, the session and task workflows on the dev server (which suggests
continue-as-new every 40 events, so these sessions cross it many times), and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client, WorkflowExecutionStatus

from tests.support import keys
from tests.support.cli import tether
from tests.support.helpers import FakeForge, clean_environment, eventually, history_text
from tests.support.payloads import FORBIDDEN, KUBECTL_RETRIES, assistant, failure
from tests.support.sessions import run_hook, running_team
from tether import client as api
from tether.client import connect
from tether.contracts import (
    NoteInput,
    ReleaseInput,
    Report,
    SessionInput,
    SessionState,
    ShellCheck,
    TaskClaimedInput,
    TaskSpec,
    TaskState,
    ToolCall,
)
from tether.ops.stack import free_port, start_temporal_dev_server
from tether.trust.signing import generate, load_private, order
from workflows.session import AgentSessionWorkflow


async def _at_least(probe: Callable[[], Awaitable[list[Any]]], n: int) -> bool:
    return len(await probe()) >= n


def _spec(task_id: str, kind: str | None = None) -> TaskSpec:
    return TaskSpec(
        id=task_id, title=f"Task {task_id}", kind=kind, checks=[ShellCheck(command="true")]
    )


async def test_replayed_kubectl_retries_stop_at_the_fifth_and_block_the_task(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
) -> None:
    key_path, public = generate(tmp_path / "founder")
    founder = {"founder": {"public_key": public}}
    async with running_team(client, fresh_db, tmp_path, forge, founder) as team:
        devops, q = team.agent("devops"), team.task_queue
        task_id = f"rollout-{devops.rsplit('-', 1)[1]}"
        await api.create_task(client, q, _spec(task_id))
        sid = {"session_id": "cc-ops"}
        await run_hook("SessionStart", devops, {**sid, "source": "startup"}, team)
        await api.claim_task(client, task_id, devops)

        async def holds_task() -> bool:
            view = await api.session_view(client, devops)
            return view is not None and view.task_id == task_id

        await eventually(holds_task, "the session to hear of the claim")

        read = {
            **sid,
            "tool_name": "Read",
            "tool_input": {"file_path": "/srv/infra/api.yaml"},
            "tool_response": {"file": {"content": "kind: Deployment"}},
        }
        answers = []
        for i, command in enumerate(KUBECTL_RETRIES):
            bash = {**sid, "tool_name": "Bash", "tool_input": {"command": command}}
            pre = await run_hook("PreToolUse", devops, bash, team, "--fail-closed")
            assert pre.answer is None, f"call {i + 1} must be allowed: {pre.answer}"
            post = await run_hook(
                "PostToolUseFailure",
                devops,
                {**failure(command, f"Exit code 1\n{FORBIDDEN}", f"toolu_{i}"), **sid},
                team,
            )
            answers.append(post.answer)
            # Reading the docs in between is not a success of the failing action.
            await run_hook("PostToolUse", devops, read, team)
        assert answers[:4] == [None] * 4
        fifth = answers[4]
        assert fifth is not None and "decision" not in fifth
        context = fifth["hookSpecificOutput"]["additionalContext"]
        assert "kubectl set failed 5 times the same way" in context
        assert "decompose the task into smaller steps" in context

        sixth = {**sid, "tool_name": "Bash", "tool_input": {"command": KUBECTL_RETRIES[0]}}
        denied = await run_hook("PreToolUse", devops, sixth, team, "--fail-closed")
        assert denied.answer is not None
        reason = denied.answer["hookSpecificOutput"]["permissionDecisionReason"]
        assert reason.startswith("stopped by Tether: kubectl set failed 5 times the same way")
        assert f"task {task_id} is blocked" in reason

        async def blocked() -> Any:
            record = await team.store.get_task(task_id)
            return record if record and record.task.state == TaskState.BLOCKED else None

        record = await eventually(blocked, "the task to be blocked")
        event = record.events[-1]
        assert event.kind == "loop_blocked" and event.actor == "tether"
        assert event.detail["count"] == 5 and "(Forbidden)" in str(event.detail["error"])
        items = [i for i in await team.store.inbox() if i.kind == "loop_blocked"]
        assert len(items) == 1 and items[0].action == f"tether task unblock {task_id}"
        assert devops in items[0].title

        # Nobody but the founder lifts it: not an unsigned unblock (any agent can run one)...
        with pytest.raises(api.Refused, match="only a founder-signed order lifts it"):
            await api.unblock_task(client, task_id, "devops", "I fixed it, honest")
        # ...nor a release signal sent straight to the session, nor one signed by another key...
        session = client.get_workflow_handle(f"session-{devops}")
        forged = order("unblock", task_id, "founder", "", Ed25519PrivateKey.generate())
        for body in (None, forged.model_dump(mode="json")):
            await session.signal("release", ReleaseInput(task_id=task_id, order=body))

        async def judged() -> list[dict[str, Any]]:
            rows = [
                *await team.store.founder_orders(devops),
                *await team.store.founder_orders(task_id),
            ]
            return [r for r in rows if r["judged_for"] == f"session of {devops}"]

        await eventually(lambda: _at_least(judged, 2), "the forged releases to be judged")
        assert sorted((r["accepted"], r["reason"].split(" (")[0]) for r in await judged()) == [
            (False, "no founder-signed order came with it"),
            (False, "the signature does not verify with the founder's public key"),
        ]
        # ...nor ending the session and starting a fresh one: the hold comes back with the task.
        fresh = {"session_id": "cc-ops-2"}
        started = await run_hook("SessionStart", devops, {**fresh, "source": "startup"}, team)
        assert started.answer is not None
        brief = started.answer["hookSpecificOutput"]["additionalContext"]
        assert brief.startswith("stopped by Tether: kubectl set failed 5 times the same way")
        sixth = {**fresh, "tool_name": "Bash", "tool_input": {"command": KUBECTL_RETRIES[0]}}
        again = await run_hook("PreToolUse", devops, sixth, team, "--fail-closed")
        assert again.answer is not None
        assert again.answer["hookSpecificOutput"]["permissionDecision"] == "deny"

        # The founder fixes the permission and unblocks, signed: the agent may work again.
        signed = order("unblock", task_id, "founder", "may patch now", load_private(key_path))
        await api.unblock_task(client, task_id, "founder", "may patch now", order=signed)

        async def open_gate() -> bool:
            pre = await run_hook("PreToolUse", devops, sixth, team, "--fail-closed")
            return pre.answer is None

        await eventually(open_gate, "the session to be released")
        assert not [i for i in await team.store.inbox() if i.kind == "loop_blocked"]

        second = await api.end_session(client, devops, "done", "agent")
        assert second.external_id == "cc-ops-2" and second.task_id == task_id
        # The first session, ended when the second started, counted every report exactly.
        first = None
        async for run in client.list_workflows(f"WorkflowId = 'session-{devops}'"):
            if run.status == WorkflowExecutionStatus.COMPLETED:
                handle = client.get_workflow_handle_for(
                    AgentSessionWorkflow.run, run.id, run_id=run.run_id
                )
                view = await handle.result()
                first = view if view.external_id == "cc-ops" else first
        assert first is not None
        g = first.governor
        assert (g.tool_calls, g.failures, g.reports) == (10, 5, 10)
        rows = await team.store.tool_calls(devops)
        assert len(rows) == 10 and len({r["signature"] for r in rows if not r["ok"]}) == 1


def _use(transcript: Path, tokens: int) -> None:
    with transcript.open("a") as f:
        f.write(assistant(f"msg_{uuid.uuid4().hex}", 5, tokens - 5, 0, out=200))


async def test_context_crossing_70_85_95_compacts_trims_and_hands_off_once_each(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, q = team.agent("coder"), team.task_queue
        task_id = f"retries-{coder.rsplit('-', 1)[1]}"
        await api.create_task(client, q, _spec(task_id))
        transcript = tmp_path / "cc-mem.jsonl"
        transcript.touch()
        sid = {"session_id": "cc-mem", "transcript_path": str(transcript)}
        await run_hook("SessionStart", coder, {**sid, "source": "startup"}, team)
        await api.claim_task(client, task_id, coder)
        await api.note_session(client, coder, NoteInput(kind="decision", text="retry with jitter"))
        await api.note_session(client, coder, NoteInput(kind="question", text="cap at 5 tries?"))

        edit = {
            **sid,
            "tool_name": "Edit",
            "tool_input": {"file_path": "api/retry.py"},
            "tool_response": {"filePath": "api/retry.py"},
        }
        # Claude Code compacted early on: its summary is kept for the handoff (redacted).
        leaked = "ghp_" + uuid.uuid4().hex + "ABCDEF"
        compacted = await run_hook(
            "PostCompact",
            coder,
            {
                **sid,
                "trigger": "auto",
                "compact_summary": f"We chose jittered retries. The user pasted {leaked} once.",
            },
            team,
        )
        assert compacted.answer is None
        directives: list[tuple[float, str]] = []
        for pct in (0.30, 0.55, 0.71, 0.73, 0.69, 0.86, 0.84, 0.90, 0.96):
            # Of a 200,000 window Claude Code (auto-compact on) lets the agent use 167,000.
            _use(transcript, int(pct * 167_000))
            post = await run_hook("PostToolUse", coder, edit, team)
            if post.answer is not None:
                text = post.answer["hookSpecificOutput"]["additionalContext"]
                directives.append((pct, text.split(":", 1)[1].split(".")[1].strip().split()[0]))
        assert directives == [(0.71, "Compact"), (0.86, "Trim"), (0.96, "Tether")]
        assert post.answer is not None and "decision" not in post.answer
        handoff = post.answer["hookSpecificOutput"]["additionalContext"]
        assert "archived this session's state" in handoff

        handle = client.get_workflow_handle_for(AgentSessionWorkflow.run, f"session-{coder}")
        ended = await handle.result()
        assert ended.state == SessionState.ENDED and ended.end_reason == "handoff: context 96% full"
        assert not ended.pseudo_work  # the work goes on in the next session
        assert ended.governor.directive_counts == {"compact": 1, "trim": 1, "handoff": 1}
        row = await team.store.pool.fetchrow("SELECT * FROM handoffs WHERE agent = $1", coder)
        assert row["state"]["task_id"] == task_id and row["state"]["files"] == ["api/retry.py"]

        # The runtime compacts (or restarts): the next session starts with the handoff brief.
        again = await run_hook("SessionStart", coder, {**sid, "source": "compact"}, team)
        assert again.answer is not None
        brief = again.answer["hookSpecificOutput"]["additionalContext"]
        assert brief.startswith(f"Handoff from your previous session:\n{coder}'s session started")
        for part in (
            "retry with jitter",
            "cap at 5 tries?",
            "api/retry.py",
            f"Task you hold: {task_id}",
            "We chose jittered retries. The user pasted <redacted> once.",
        ):
            assert part in brief
        assert leaked not in brief and ended.governor.compactions == 1
        history = history_text(await handle.fetch_history())
        assert leaked not in history and "We chose jittered retries" in history
        stored = await team.store.pool.fetchval("SELECT string_agg(brief, '') FROM handoffs")
        assert leaked not in stored
        second = await api.session_view(client, coder)
        assert second is not None and second.state == SessionState.ACTIVE
        assert second.task_id == task_id and second.handoff_from is not None
        assert second.governor.directive_counts == {}
        await api.end_session(client, coder, "done", "agent")


async def _complete(client: Client, q: str, task_id: str, agent: str, kind: str) -> None:
    await api.create_task(client, q, _spec(task_id, kind))
    await api.claim_task(client, task_id, agent)
    assert (await api.submit_task(client, task_id, agent, None)).done


async def test_a_task_costing_five_times_the_average_is_paused_until_the_founder_resumes(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    temporal_address: str,
) -> None:
    _, public = generate(tmp_path / "home")  # where `tether resume` finds the founder's key
    founder = {"founder": {"public_key": public}}
    async with running_team(client, fresh_db, tmp_path, forge, founder) as team:
        coder, q = team.agent("coder"), team.task_queue
        sfx = coder.rsplit("-", 1)[1]
        # History: five completed bugfixes that cost $1.00 .. $3.00 (average $2.00), and a
        # feature that cost $50 (another kind: not in the bugfix average).
        for i in range(5):
            done = f"fix{i}-{sfx}"
            await _complete(client, q, done, coder, "bugfix")
            await team.store.record_costs(coder, f"seed-{i}", {done: 1.0 + i * 0.5}, {})
        await _complete(client, q, f"feat-{sfx}", coder, "feature")
        await team.store.record_costs(coder, "seed-f", {f"feat-{sfx}": 50.0}, {})

        task_id = f"fix-{sfx}"
        await api.create_task(client, q, _spec(task_id, "bugfix"))
        await api.start_session(client, q, SessionInput(agent=coder, runtime="sdk"))
        await api.claim_task(client, task_id, coder)

        async def baseline() -> Any:
            view = await api.session_view(client, coder)
            return view.governor.baseline if view else None

        base = await eventually(baseline, "the cost baseline")
        assert base.average_usd == 2.0 and base.basis == "kind bugfix" and base.tasks == 5
        # Switching the session to another task would restart the comparison: a forged claim
        # (the agent does not hold that task) is checked against the task's workflow, and
        # ignored.
        session = client.get_workflow_handle(f"session-{coder}")
        await session.signal("task_claimed", TaskClaimedInput(task_id=f"feat-{sfx}"))

        async def claim_checked() -> bool:
            events = [e async for e in session.fetch_history_events()]
            checks = {
                e.event_id
                for e in events
                if e.activity_task_scheduled_event_attributes.activity_type.name
                == "agent_holds_task"
            }
            return any(
                e.activity_task_completed_event_attributes.scheduled_event_id in checks
                for e in events
            )

        await eventually(claim_checked, "the forged claim to be checked")
        after = await api.session_view(client, coder)
        assert after is not None and after.task_id == task_id and after.governor.baseline == base

        kinds: list[tuple[int, str]] = []
        for n in range(1, 12):
            answer = await api.report(client, coder, Report(cost_usd=1.0))
            kinds += [(n, d.kind) for d in answer.directives]
        assert kinds == [(7, "cost_warning"), (11, "cost_pause")]
        assert answer.deny and answer.deny.startswith(
            f"paused by Tether: task {task_id} has cost $11.00, above $10.00"
        )

        async def paused() -> bool:
            record = await team.store.get_task(task_id)
            return record is not None and record.task.state == TaskState.PAUSED

        await eventually(paused, "the task to be paused")
        refused = await tether_env_run(
            team.task_queue,
            fresh_db,
            temporal_address,
            tmp_path,
            "task",
            "submit",
            task_id,
            "--agent",
            coder,
        )
        assert refused.code == 3 and "is paused: task" in refused.err
        inbox = {i.kind: i for i in await team.store.inbox()}
        assert inbox["cost_warning"].subject == task_id
        assert inbox["cost_warning"].title == (
            f"task {task_id} ({coder}) has cost $7.00: warned above $6.00 and paused above "
            "$10.00, 3x and 5x the average of 5 completed tasks (kind bugfix), $2.00"
        )
        assert inbox["cost_paused"].action == f"tether resume {task_id}"

        unsigned = await tether_env_run(
            team.task_queue, fresh_db, temporal_address, tmp_path / "agent", "resume", task_id
        )
        assert unsigned.code == 3 and "only a founder-signed order lifts it" in unsigned.err
        resumed = await tether_env_run(
            team.task_queue,
            fresh_db,
            temporal_address,
            tmp_path,
            "resume",
            task_id,
            "--reason",
            "worth it",
        )
        assert resumed.code == 0 and f"task {task_id} resumed; it is now claimed" in resumed.out

        async def released() -> bool:
            view = await api.session_view(client, coder)
            return view is not None and view.governor.hold is None

        await eventually(released, "the session to be released")
        # The next pause comes at twice the cost at the resume ($22): $5 more is fine.
        answer = await api.report(client, coder, Report(cost_usd=5.0))
        assert answer.deny is None and answer.directives == []
        assert "cost_paused" not in {i.kind for i in await team.store.inbox()}

        ended = await api.end_session(client, coder, "done", "agent")
        assert ended.governor.task_costs == {task_id: 16.0}
        ledger = await team.store.task_cost(task_id)
        assert ledger == 16.0  # the ledger holds exactly what was reported


async def tether_env_run(queue: str, db: str, address: str, tmp_path: Path, *args: str) -> Any:
    env = clean_environment(
        TETHER_HOME=str(keys.write(tmp_path / "home")),
        TEMPORAL_ADDRESS=address,
        DATABASE_URL=db,
        TETHER_TASK_QUEUE=queue,
    )
    return await tether(env, *args)


@pytest.fixture(scope="module")
async def busy_client() -> AsyncIterator[Client]:
    """A dev server of its own that suggests continue-as-new every 400 events (~80 reports):
    the shared one's 40 would make this test mostly continue-as-new round trips."""
    env = await start_temporal_dev_server(
        port=free_port(),
        ui_port=None,
        http_port=None,
        db_file=None,
        extra_args=[
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=400",
        ],
    )
    try:
        yield await connect(
            env.client.service_client.config.target_host, "default", signer=keys.FOUNDER
        )
    finally:
        await env.shutdown()


async def test_a_report_sent_again_after_continue_as_new_is_answered_not_counted_twice(
    busy_client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """Temporal recognises an update sent again by its id only within a run: a hook that gave
    up waiting sends its report again with the same id, maybe after the session continued as
    new. The session remembers the ids itself: the spend is counted once."""
    client = busy_client
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        agent, q = team.agent("coder"), team.task_queue
        await api.start_session(client, q, SessionInput(agent=agent, runtime="sdk"))
        handle = client.get_workflow_handle_for(AgentSessionWorkflow.run, f"session-{agent}")
        first_run = (await handle.describe()).run_id
        costly = Report(context_tokens=1000, cost_usd=0.5)
        await handle.execute_update(AgentSessionWorkflow.report, costly, id="sent-twice")
        sent = 1
        while (await handle.describe()).run_id == first_run:
            assert sent < 200, "the session never continued as new"
            await api.report(client, agent, Report(context_tokens=1000 + sent))
            sent += 1
        again = await handle.execute_update(AgentSessionWorkflow.report, costly, id="sent-twice")
        assert again.reports == sent and again.deny is None
        view = await api.session_view(client, agent)
        assert view is not None and view.governor.reports == sent
        assert view.governor.cost_usd == pytest.approx(0.5)


async def test_five_thousand_reports_keep_history_bounded_and_counts_exact(
    busy_client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    client = busy_client
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        agent, q = team.agent("security"), team.task_queue
        await api.start_session(client, q, SessionInput(agent=agent, runtime="sdk"))
        total, batch = 5000, 8

        def report(n: int) -> Report:
            # Every seventh call fails, each with its own error: no loop, exact counts.
            ok = n % 7 != 0
            call = ToolCall(
                tool="Bash",
                ok=ok,
                action="Bash:scan",
                signature="" if ok else f"1||finding #{n}",
                input_digest=f"{n:x}",
            )
            # Context climbs to 90% over the run: compact and trim once each, no handoff.
            return Report(tool_call=call, context_tokens=int(180_000 * n / total), cost_usd=0.001)

        sent = 0
        while sent < total:
            answers = await asyncio.gather(
                *(api.report(client, agent, report(n)) for n in range(sent + 1, sent + batch + 1))
            )
            assert all(a.deny is None for a in answers)
            sent += batch

        handle = client.get_workflow_handle_for(AgentSessionWorkflow.run, f"session-{agent}")
        view = await api.session_view(client, agent)
        assert view is not None
        g = view.governor
        assert (g.reports, g.tool_calls, g.failures) == (5000, 5000, 5000 // 7)
        assert g.directive_counts == {"compact": 1, "trim": 1}
        assert round(g.cost_usd, 6) == 5.0

        # Bounded: this run's history is short, and the session has been many runs.
        description = await handle.describe()
        assert description.raw_description.workflow_execution_info.history_length < 600
        events = [e async for e in handle.fetch_history_events()]
        assert len(events) < 600
        runs = [w async for w in client.list_workflows(f"WorkflowId = 'session-{agent}'")]
        assert len(runs) > 25, f"only {len(runs)} runs: continue-as-new was not exercised"

        ended = await api.end_session(client, agent, "done", "agent")
        assert ended.governor.reports == 5000
        rows = await team.store.pool.fetchval(
            "SELECT count(*) FROM tool_calls WHERE agent = $1", agent
        )
        assert rows == 5000  # every call recorded once, across every continue-as-new
        ledger = await team.store.pool.fetchval(
            "SELECT usd FROM cost_ledger WHERE agent = $1", agent
        )
        assert round(ledger, 6) == 5.0
        # Reports to an ended session are refused, never lost silently.
        try:
            await api.report(client, agent, report(1))
        except api.Refused as exc:
            assert "has ended" in str(exc)
        else:
            raise AssertionError("a report to an ended session was accepted")
