"""The PostgreSQL read model: migrations, idempotent writes, an append-only history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tether.contracts import ShellCheck, TaskEvent, TaskSpec, TaskState, TaskView
from tether.errors import TetherError
from tether.store import Migration, Store, connect_pool, migrate
from tether.store import migrations as store_migrations


async def test_migrations_apply_once_and_refuse_edits(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await connect_pool(fresh_db)
    try:
        assert await migrate(pool) == [m.version for m in store_migrations.shipped()]
        assert await migrate(pool) == []
        edited = [
            Migration(m.version, m.name, m.sql + "\n-- edited") for m in store_migrations.shipped()
        ]
        monkeypatch.setattr(store_migrations, "shipped", lambda: edited)
        with pytest.raises(TetherError, match="was changed after it was applied"):
            await migrate(pool)
    finally:
        await pool.close()


def _view(task_id: str, seq: int, state: TaskState) -> tuple[TaskView, TaskEvent]:
    now = datetime.now(UTC)
    spec = TaskSpec(id=task_id, title="t", checks=[ShellCheck(command="true")])
    view = TaskView(spec=spec, state=state, seq=seq, created_at=now, updated_at=now)
    event = TaskEvent(seq=seq, at=now + timedelta(seconds=seq), actor="a", kind="k", to_state=state)
    return view, event


async def test_writes_are_idempotent_and_never_go_backwards(store: Store) -> None:
    task_id = f"s-{uuid.uuid4().hex[:8]}"
    v1, e1 = _view(task_id, 1, TaskState.OPEN)
    v2, e2 = _view(task_id, 2, TaskState.CLAIMED)
    await store.record(v1, [e1])
    await store.record(v2, [e2])
    await store.record(v2, [e2])  # an activity retry
    await store.record(v1, [e1])  # a late, older snapshot
    record = await store.get_task(task_id)
    assert record is not None
    assert record.task.state == TaskState.CLAIMED and [e.seq for e in record.events] == [1, 2]


async def test_task_events_are_append_only(store: Store) -> None:
    task_id = f"s-{uuid.uuid4().hex[:8]}"
    view, event = _view(task_id, 1, TaskState.OPEN)
    await store.record(view, [event])
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await store.pool.execute(
            "UPDATE task_events SET actor = 'forger' WHERE task_id = $1", task_id
        )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await store.pool.execute("DELETE FROM task_events WHERE task_id = $1", task_id)


async def test_the_brief_reads_a_bounded_slice_and_offers_what_the_whole_table_would(
    fresh_db: str,
) -> None:
    from tether.contracts import Artifact, GroundTruth
    from tether.core.brief import compose_brief

    pool = await connect_pool(fresh_db)
    await migrate(pool)
    store = Store(pool)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    agent, rows = "coder", []
    for i in range(400):
        state = [TaskState.OPEN, TaskState.CLAIMED, TaskState.DONE, TaskState.BLOCKED][i % 4]
        assignee = None if state == TaskState.OPEN else ("other" if i % 7 else agent)
        repo = "app" if i % 5 == 0 else "docs"
        spec = TaskSpec(
            id=f"t-{i:03d}",
            title=f"Task {i}",
            checks=[ShellCheck(command="true")],
            artifact=Artifact(kind="commit", repository=repo),
        )
        at = start + timedelta(minutes=400 - i)  # later tasks are older
        view = TaskView(spec=spec, state=state, assignee=assignee, created_at=at, updated_at=at)
        await store.record(view, [])
        rows.append(view)
    try:
        bounded = await store.brief_tasks(agent, ["app"], others_limit=20, open_limit=5)
        everything = await store.task_summaries()
    finally:
        await pool.close()
    mine = [t for t in bounded if t.assignee == agent]
    others = [t for t in bounded if t.assignee not in (None, agent)]
    opened = [t for t in bounded if t.state == TaskState.OPEN]
    assert {t.state for t in mine} <= {TaskState.CLAIMED, TaskState.BLOCKED}
    assert len(mine) == len([v for v in rows if v.assignee == agent and v.state != TaskState.DONE])
    assert len(others) == 20 and len(opened) == 5
    # The same task is offered as from the whole table: the agent's repository, oldest first.
    full = compose_brief(agent, ["app"], GroundTruth(tasks=everything))
    slim = compose_brief(agent, ["app"], GroundTruth(tasks=bounded))
    assert slim.offered is not None and full.offered is not None
    assert slim.offered.id == full.offered.id
    assert [t.id for t in slim.own_tasks] == [t.id for t in full.own_tasks]
