"""TaskWorkflow on a real Temporal dev server, with real checks and a real PostgreSQL read model."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.worker import Worker

from tests.support.helpers import HttpService
from tether import client as api
from tether.contracts import HttpCheck, ShellCheck, TaskSpec, TaskState
from tether.store import Store


def http_task(task_id: str, url: str, **extra: object) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "id": task_id,
            "title": "Health endpoint answers",
            "checks": [{"kind": "http", "url": f"{url}/health", "name": "health", **extra}],
        }
    )


async def test_failing_check_keeps_task_open_then_fix_closes_it(
    client: Client, worker: Worker, store: Store, http_service: HttpService, task_id: str
) -> None:
    http_service.respond(500, {"status": "broken"})
    await api.create_task(client, worker.task_queue, http_task(task_id, http_service.url))
    await api.claim_task(client, task_id, "coder")

    result = await api.submit_task(client, task_id, "coder", note="all done, trust me")
    assert not result.done
    assert result.state == TaskState.CLAIMED
    [evidence] = result.evidence
    assert not evidence.passed
    assert evidence.status_code == 500
    assert "expected HTTP 200, got 500" in evidence.summary
    assert "broken" in evidence.output_excerpt

    record = await store.get_task(task_id)
    assert record is not None
    assert record.task.state == TaskState.CLAIMED
    assert record.task.last_evidence[0].status_code == 500
    assert record.task.last_note == "all done, trust me"

    http_service.respond(200, {"status": "ok"})
    result = await api.submit_task(client, task_id, "coder", note=None)
    assert result.done and result.state == TaskState.DONE
    record = await store.get_task(task_id)
    assert record is not None and record.task.state == TaskState.DONE
    kinds = [e.kind for e in record.events]
    assert kinds == [
        "created",
        "claimed",
        "submitted",
        "verification_failed",
        "submitted",
        "verified",
    ]
    assert [e.actor for e in record.events][:3] == ["founder", "coder", "coder"]
    assert record.events[3].actor == "tether"


async def test_second_agent_cannot_claim_held_task(
    client: Client, worker: Worker, store: Store, http_service: HttpService, task_id: str
) -> None:
    await api.create_task(client, worker.task_queue, http_task(task_id, http_service.url))
    await api.claim_task(client, task_id, "coder")
    with pytest.raises(api.Refused, match="held by coder"):
        await api.claim_task(client, task_id, "devops")
    view = await api.get_view(client, task_id)
    assert view.assignee == "coder" and view.state == TaskState.CLAIMED
    record = await store.get_task(task_id)
    assert record is not None and [e.kind for e in record.events] == ["created", "claimed"]


async def test_concurrent_claims_have_exactly_one_winner(
    client: Client, worker: Worker, http_service: HttpService, task_id: str
) -> None:
    await api.create_task(client, worker.task_queue, http_task(task_id, http_service.url))
    agents = [f"agent-{i}" for i in range(8)]
    outcomes = await asyncio.gather(
        *(api.claim_task(client, task_id, a) for a in agents), return_exceptions=True
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    refusals = [o for o in outcomes if isinstance(o, api.Refused)]
    assert len(winners) == 1 and len(refusals) == 7
    assert (await api.get_view(client, task_id)).assignee == winners[0].assignee


async def test_only_assignee_can_submit_and_preassigned_task_refuses_others(
    client: Client, worker: Worker, http_service: HttpService, task_id: str
) -> None:
    spec = http_task(task_id, http_service.url).model_copy(update={"assignee": "coder"})
    await api.create_task(client, worker.task_queue, spec)
    with pytest.raises(api.Refused, match="assigned to coder"):
        await api.claim_task(client, task_id, "marketing")
    with pytest.raises(api.Refused, match="not claimed yet"):
        await api.submit_task(client, task_id, "coder", None)
    await api.claim_task(client, task_id, "coder")
    with pytest.raises(api.Refused, match="only its assignee, coder"):
        await api.submit_task(client, task_id, "marketing", "I did it")
    assert (await api.get_view(client, task_id)).submissions == 0


async def test_block_unblock_and_cancel(
    client: Client, worker: Worker, store: Store, http_service: HttpService, task_id: str
) -> None:
    await api.create_task(client, worker.task_queue, http_task(task_id, http_service.url))
    await api.claim_task(client, task_id, "coder")
    view = await api.block_task(client, task_id, "founder", "waiting for the API key")
    assert view.state == TaskState.BLOCKED
    with pytest.raises(api.Refused, match="waiting for the API key"):
        await api.submit_task(client, task_id, "coder", None)
    view = await api.unblock_task(client, task_id, "founder", "key arrived")
    assert view.state == TaskState.CLAIMED and view.assignee == "coder"
    view = await api.cancel_task(client, task_id, "founder", "no longer needed")
    assert view.state == TaskState.CANCELLED
    record = await store.get_task(task_id)
    assert record is not None
    assert [e.to_state for e in record.events][-3:] == [
        TaskState.BLOCKED,
        TaskState.CLAIMED,
        TaskState.CANCELLED,
    ]


async def test_duplicate_task_id_is_refused(
    client: Client, worker: Worker, http_service: HttpService, task_id: str
) -> None:
    await api.create_task(client, worker.task_queue, http_task(task_id, http_service.url))
    with pytest.raises(api.Refused, match="already exists"):
        await api.create_task(client, worker.task_queue, http_task(task_id, http_service.url))


async def test_hanging_and_noisy_commands_fail_with_bounded_evidence(
    client: Client, worker: Worker, store: Store, task_id: str
) -> None:
    spec = TaskSpec(
        id=task_id,
        title="Bad commands",
        checks=[
            ShellCheck(name="hangs", command="sleep 600", timeout_seconds=1),
            ShellCheck(name="noisy", command="yes 'megabytes of output' | head -c 5000000; exit 3"),
            HttpCheck(name="unreachable", url="http://127.0.0.1:9/never", timeout_seconds=2),
        ],
    )
    await api.create_task(client, worker.task_queue, spec)
    await api.claim_task(client, task_id, "coder")
    result = await api.submit_task(client, task_id, "coder", None)
    assert not result.done
    hangs, noisy, unreachable = result.evidence
    assert "timed out after 1s" in hangs.summary and hangs.duration_ms < 10_000
    assert noisy.exit_code == 3 and noisy.output_bytes == 5_000_000
    assert len(noisy.output_excerpt) < 5000 and "bytes elided" in noisy.output_excerpt
    assert unreachable.error and "ConnectError" in unreachable.error
    record = await store.get_task(task_id)
    assert record is not None and len(record.task.last_evidence) == 3


async def test_checks_cannot_be_changed_through_any_message(
    client: Client, worker: Worker, store: Store, http_service: HttpService, task_id: str
) -> None:
    http_service.respond(500)
    spec = http_task(task_id, http_service.url)
    await api.create_task(client, worker.task_queue, spec)
    await api.claim_task(client, task_id, "coder")
    handle = client.get_workflow_handle(f"task-{task_id}")
    # An assignee trying to smuggle easier checks into its submission is refused outright.
    weaker = {"agent": "coder", "checks": [{"kind": "shell", "command": "true"}]}
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("submit", weaker)
    assert "Failed decoding arguments" in str(refused.value.cause)
    view = await api.get_view(client, task_id)
    assert view.spec.checks == spec.checks and view.state == TaskState.CLAIMED
    result = await api.submit_task(client, task_id, "coder", None)
    assert not result.done
    record = await store.get_task(task_id)
    assert record is not None and record.task.spec == spec


async def test_state_survives_continue_as_new(
    client: Client, worker: Worker, store: Store, http_service: HttpService, task_id: str
) -> None:
    # The session's server suggests continue-as-new early (conftest); a few failed submissions
    # take this task's history past that point several times.
    http_service.respond(500)
    await api.create_task(client, worker.task_queue, http_task(task_id, http_service.url))
    await api.claim_task(client, task_id, "coder")
    for _ in range(6):
        assert not (await api.submit_task(client, task_id, "coder", None)).done
    http_service.respond(200)
    assert (await api.submit_task(client, task_id, "coder", "finally")).done

    handle = client.get_workflow_handle(f"task-{task_id}")
    result = await handle.result()
    assert result["task"]["submissions"] == 7 and result["task"]["assignee"] == "coder"
    runs = [e async for e in client.list_workflows(f"WorkflowId = 'task-{task_id}'")]
    assert len(runs) > 1, "the task never continued as new"
    record = await store.get_task(task_id)
    assert record is not None
    # created, claimed, then submitted + outcome for each of the seven submissions
    assert [e.seq for e in record.events] == list(range(1, 2 + 7 * 2 + 1))
    assert record.events[-1].kind == "verified"
