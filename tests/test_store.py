"""The PostgreSQL read model: migrations, idempotent writes, an append-only history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from activities import store as store_module
from activities.store import Migration, Store, connect_pool, migrate
from tether.contracts import ShellCheck, TaskEvent, TaskSpec, TaskState, TaskView
from tether.errors import TetherError


async def test_migrations_apply_once_and_refuse_edits(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await connect_pool(fresh_db)
    try:
        assert await migrate(pool) == [m.version for m in store_module.migrations()]
        assert await migrate(pool) == []
        edited = [
            Migration(m.version, m.name, m.sql + "\n-- edited") for m in store_module.migrations()
        ]
        monkeypatch.setattr(store_module, "migrations", lambda: edited)
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
