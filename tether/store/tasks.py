"""The task read model: tasks and task_events, written by every transition."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from tether.contracts import (
    TaskEvent,
    TaskLedger,
    TaskRecord,
    TaskState,
    TaskSummary,
    TaskView,
)
from tether.names import task_workflow_id
from tether.store import reads


class Tasks:
    pool: asyncpg.Pool

    async def record(self, task: TaskView, events: list[TaskEvent]) -> None:
        """Write a transition. Idempotent: an activity retry or a replayed event changes nothing,
        and an older snapshot never overwrites a newer one."""
        assert task.created_at is not None and task.updated_at is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO tasks (id, workflow_id, title, state, assignee, spec, last_evidence,
                                      last_note, hold_reason, held_from, submissions, seq,
                                      created_at, updated_at, held_by)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                   ON CONFLICT (id) DO UPDATE SET
                       state = excluded.state, assignee = excluded.assignee,
                       last_evidence = excluded.last_evidence, last_note = excluded.last_note,
                       hold_reason = excluded.hold_reason, held_from = excluded.held_from,
                       held_by = excluded.held_by,
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
                task.held_by,
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
        self,
        state: TaskState | None = None,
        assignee: str | None = None,
        limit: int = reads.TASK_PAGE,
    ) -> list[TaskView]:
        """The newest `limit` tasks (in one state, held by one agent), newest first."""
        rows = await reads.task_rows(
            self.pool, state.value if state else None, assignee, limit=limit
        )
        return [_view(r) for r in rows]

    async def held_or_done_since(self, agent: str, since: datetime) -> list[TaskView]:
        """The tasks `agent` holds now (claimed, verifying) and those it finished since
        `since`: what a session's deliverable is checked against."""
        rows = await self.pool.fetch(
            """SELECT * FROM tasks WHERE assignee = $1
                 AND (state IN ('claimed', 'verifying') OR (state = 'done' AND updated_at >= $2))
               ORDER BY created_at, id""",
            agent,
            since,
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
            ledger=await self.task_ledger(task_id),
        )

    async def task_ledger(self, task_id: str) -> TaskLedger:
        """The task's spend and tool calls, pruned ones included."""
        row = await reads.task_ledger_row(self.pool, task_id)
        return TaskLedger(
            usd=float(row["usd"]),
            tool_calls=int(row["calls"]),
            failed_tool_calls=int(row["failed"]),
        )

    async def task_summaries(self) -> list[TaskSummary]:
        """Every task not closed, and those closed in the last week: the brief's view of work."""
        rows = await reads.task_summary_rows(self.pool)
        return [TaskSummary.model_validate(dict(r)) for r in rows]

    async def brief_tasks(
        self, agent: str, repositories: list[str], others_limit: int, open_limit: int
    ) -> list[TaskSummary]:
        """What a session's brief is made from, bounded however large the table grows: every
        task the agent holds (claimed, verifying, blocked, paused), the `others_limit` most
        recently touched tasks other agents hold, and the first `open_limit` open tasks the
        agent may claim in the brief's own order (its own, then in its repositories, oldest
        first); oldest first, as task_summaries."""
        columns = """id, title, state, assignee, held_by, hold_reason,
                     spec->'artifact' AS artifact, created_at, updated_at"""
        rows = await self.pool.fetch(
            f"""SELECT * FROM (
               (SELECT {columns} FROM tasks
                 WHERE assignee = $1 AND state IN ('claimed', 'verifying', 'blocked', 'paused'))
               UNION ALL
               (SELECT {columns} FROM tasks
                 WHERE state IN ('claimed', 'verifying') AND assignee IS DISTINCT FROM $1
                 ORDER BY updated_at DESC, id LIMIT $3)
               UNION ALL
               (SELECT {columns} FROM tasks
                 WHERE state = 'open' AND (assignee IS NULL OR assignee = $1)
                 ORDER BY assignee IS NULL, NOT (spec->'artifact'->>'repository' = ANY($2))
                          IS NOT FALSE, created_at, id
                 LIMIT $4)
               ) AS slice ORDER BY created_at, id""",
            agent,
            repositories,
            others_limit,
            open_limit,
        )
        return [TaskSummary.model_validate(dict(r)) for r in rows]

    async def task_counts(self) -> dict[str, int]:
        """Tasks per state: the open ones, and those closed in the last week."""
        rows = await reads.task_count_rows(self.pool)
        return {r["state"]: int(r["n"]) for r in rows}

    async def task_kind(self, task_id: str) -> str | None:
        value = await self.pool.fetchval("SELECT spec->>'kind' FROM tasks WHERE id = $1", task_id)
        return None if value is None else str(value)


def _view(row: Any) -> TaskView:
    return TaskView.model_validate(reads.task_fields(row))
