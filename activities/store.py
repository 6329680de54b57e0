"""PostgreSQL: schema migrations and the task read model (asyncpg lives here and nowhere else)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg

from tether.constants import task_workflow_id
from tether.contracts import TaskEvent, TaskRecord, TaskState, TaskView
from tether.errors import TetherError

# Any constant works; it only has to be the same for every process applying migrations.
_MIGRATION_LOCK = 0x7E7E_0001


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    found = []
    for entry in resources.files("activities.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append(Migration(int(version), name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect_pool(dsn: str) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8, init=_init_connection)
    except (OSError, asyncpg.PostgresError) as exc:
        raise TetherError(
            f"cannot connect to PostgreSQL ({exc}); start it with `tether up` or set DATABASE_URL "
            "to a reachable server"
        ) from exc
    assert pool is not None
    return pool


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Apply pending migrations; safe to run from many processes at once. Returns those applied."""
    applied: list[int] = []
    async with pool.acquire() as conn, conn.transaction():
        # Serialises concurrent workers; released at the end of the transaction.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS tether_schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM tether_schema_migrations")
        }
        for m in migrations():
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise TetherError(
                        f"migration {m.version:04d}_{m.name} was changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO tether_schema_migrations (version, name, checksum)"
                " VALUES ($1, $2, $3)",
                m.version,
                m.name,
                m.checksum,
            )
            applied.append(m.version)
    return applied


class TaskStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, task: TaskView, events: list[TaskEvent]) -> None:
        """Write a transition. Idempotent: an activity retry or a replayed event changes nothing,
        and an older snapshot never overwrites a newer one."""
        assert task.created_at is not None and task.updated_at is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO tasks (id, workflow_id, title, state, assignee, spec, last_evidence,
                                      last_note, hold_reason, held_from, submissions, seq,
                                      created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                   ON CONFLICT (id) DO UPDATE SET
                       state = excluded.state, assignee = excluded.assignee,
                       last_evidence = excluded.last_evidence, last_note = excluded.last_note,
                       hold_reason = excluded.hold_reason, held_from = excluded.held_from,
                       submissions = excluded.submissions, seq = excluded.seq,
                       updated_at = excluded.updated_at
                   WHERE tasks.seq < excluded.seq""",
                task.spec.id,
                task_workflow_id(task.spec.id),
                task.spec.title,
                task.state.value,
                task.assignee,
                task.spec.model_dump(mode="json"),
                [e.model_dump(mode="json") for e in task.last_evidence],
                task.last_note,
                task.hold_reason,
                task.held_from.value if task.held_from else None,
                task.submissions,
                task.seq,
                task.created_at,
                task.updated_at,
            )
            await conn.executemany(
                """INSERT INTO task_events (task_id, seq, at, actor, kind, from_state, to_state,
                                            detail)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                   ON CONFLICT (task_id, seq) DO NOTHING""",
                [
                    (
                        task.spec.id,
                        e.seq,
                        e.at,
                        e.actor,
                        e.kind,
                        e.from_state.value if e.from_state else None,
                        e.to_state.value,
                        e.detail,
                    )
                    for e in events
                ],
            )

    async def list_tasks(
        self, state: TaskState | None = None, assignee: str | None = None
    ) -> list[TaskView]:
        rows = await self.pool.fetch(
            """SELECT * FROM tasks
               WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR assignee = $2)
               ORDER BY created_at, id""",
            state.value if state else None,
            assignee,
        )
        return [_view(r) for r in rows]

    async def get_task(self, task_id: str) -> TaskRecord | None:
        row = await self.pool.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)
        if row is None:
            return None
        events = await self.pool.fetch(
            "SELECT * FROM task_events WHERE task_id = $1 ORDER BY seq", task_id
        )
        return TaskRecord(
            task=_view(row),
            events=[
                TaskEvent(
                    seq=e["seq"],
                    at=e["at"],
                    actor=e["actor"],
                    kind=e["kind"],
                    from_state=e["from_state"],
                    to_state=e["to_state"],
                    detail=e["detail"],
                )
                for e in events
            ],
        )


def _view(row: Any) -> TaskView:
    return TaskView.model_validate(
        {
            "spec": row["spec"],
            "state": row["state"],
            "assignee": row["assignee"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "hold_reason": row["hold_reason"],
            "held_from": row["held_from"],
            "last_note": row["last_note"],
            "last_evidence": row["last_evidence"],
            "submissions": row["submissions"],
            "seq": row["seq"],
        }
    )
