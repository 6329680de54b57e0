"""Retention: what a year's record keeps (issue 31).

The tool-call log grows with every report (a team of eleven makes millions a year) and the cost
ledger with every session and task. Past an age (`[retention] ledger_days`), a prune sums them
into one row per agent, task and UTC day (`tool_call_days`, `cost_days`), removing the detail
in the same statement, so a row is either in the log or in its rollup, never both and never
neither, however a prune is interrupted. Cleared inbox items, refused messages and refused
connections as old are removed too: the audit chain holds each of them (what it was, who, when).

What no prune touches: tasks and their events, sessions, deployments and their audit, the
audit chain, the founder's orders, spend per session and day (what budgets read), handoffs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from tether.contracts import PrunePart, PruneReport
from tether.store import audit

# What no prune touches (reported with their sizes).
KEPT = (
    "tasks",
    "task_events",
    "sessions",
    "deployments",
    "deploy_audit",
    "audit_chain",
    "founder_orders",
    "spend_days",
    "handoffs",
    "tool_call_days",
    "cost_days",
)

_ROLL_TOOL_CALLS = """
    WITH gone AS (
        DELETE FROM tool_calls WHERE at >= $1 AND at < $2
        RETURNING agent, task_id, at, tool, ok
    ), summed AS (
        INSERT INTO tool_call_days AS d (agent, task_id, day, tool, calls, failed)
        SELECT agent, COALESCE(task_id, ''), (at AT TIME ZONE 'UTC')::date, tool,
               count(*), count(*) FILTER (WHERE NOT ok)
        FROM gone GROUP BY 1, 2, 3, 4
        ON CONFLICT (agent, task_id, day, tool) DO UPDATE SET
            calls = d.calls + EXCLUDED.calls, failed = d.failed + EXCLUDED.failed
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) AS rows, (SELECT count(*) FROM summed) AS rollup"""

_ROLL_COSTS = """
    WITH gone AS (
        DELETE FROM cost_ledger WHERE updated_at >= $1 AND updated_at < $2
        RETURNING *
    ), summed AS (
        INSERT INTO cost_days AS d (agent, task_id, day, sessions, usd, input_tokens,
                                    output_tokens, cache_read_tokens, cache_write_tokens)
        SELECT agent, task_id, (updated_at AT TIME ZONE 'UTC')::date, count(*), sum(usd),
               sum(input_tokens), sum(output_tokens), sum(cache_read_tokens),
               sum(cache_write_tokens)
        FROM gone GROUP BY 1, 2, 3
        ON CONFLICT (agent, task_id, day) DO UPDATE SET
            sessions = d.sessions + EXCLUDED.sessions,
            usd = d.usd + EXCLUDED.usd,
            input_tokens = d.input_tokens + EXCLUDED.input_tokens,
            output_tokens = d.output_tokens + EXCLUDED.output_tokens,
            cache_read_tokens = d.cache_read_tokens + EXCLUDED.cache_read_tokens,
            cache_write_tokens = d.cache_write_tokens + EXCLUDED.cache_write_tokens
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) AS rows, (SELECT count(*) FROM summed) AS rollup"""

# (table, its time column, the condition a row must also meet): removed once the audit chain
# holds them.
_AUDITED = (
    ("inbox", "cleared_at", "cleared_at IS NOT NULL"),
    ("refused_messages", "at", "true"),
    ("egress_refusals", "at", "true"),
)


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC `days` days before today: a prune takes whole days."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return datetime.combine(today - timedelta(days=days), time(), UTC)


class Retention:
    pool: asyncpg.Pool

    async def prune(self, cutoff: datetime, *, apply: bool, by: str = "founder") -> PruneReport:
        """What is older than `cutoff` and what keeps it; removed (rolled up first) when
        `apply`, one UTC day at a time, each day in its own transaction."""
        parts = [
            await self._roll("tool_calls", "at", "tool_call_days", _ROLL_TOOL_CALLS, cutoff, apply),
            await self._roll("cost_ledger", "updated_at", "cost_days", _ROLL_COSTS, cutoff, apply),
        ]
        for table, column, condition in _AUDITED:
            parts.append(await self._audited(table, column, condition, cutoff, apply))
        kept = await self._sizes()
        report = PruneReport(cutoff=cutoff, applied=apply, parts=parts, kept=kept)
        if apply:
            removed = {p.table: p.rows for p in parts}
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO prunes (by, cutoff, removed, kept) VALUES ($1, $2, $3, $4)",
                    by,
                    cutoff,
                    removed,
                    kept,
                )
                said = {"cutoff": cutoff.isoformat(), "removed": removed}
                await audit.append(conn, "pruned", "retention", by, said)
        return report

    async def _roll(
        self, table: str, column: str, rollup: str, statement: str, cutoff: datetime, apply: bool
    ) -> PrunePart:
        if not apply:
            row = await self.pool.fetchrow(
                f"""SELECT count(*) AS rows FROM {table} WHERE {column} < $1""", cutoff
            )
            assert row is not None
            return PrunePart(table=table, rows=int(row["rows"]), kept_in=rollup)
        oldest = await self.pool.fetchval(f"SELECT min({column}) FROM {table}")
        rows = rolled = 0
        if oldest is not None:
            day: date = oldest.astimezone(UTC).date()
            while (start := datetime.combine(day, time(), UTC)) < cutoff:
                end = min(start + timedelta(days=1), cutoff)
                async with self.pool.acquire() as conn, conn.transaction():
                    done = await conn.fetchrow(statement, start, end)
                assert done is not None
                rows += int(done["rows"])
                rolled += int(done["rollup"])
                day += timedelta(days=1)
        return PrunePart(table=table, rows=rows, kept_in=rollup, rollup_rows=rolled)

    async def _audited(
        self, table: str, column: str, condition: str, cutoff: datetime, apply: bool
    ) -> PrunePart:
        if apply:
            status = await self.pool.execute(
                f"DELETE FROM {table} WHERE {condition} AND {column} < $1", cutoff
            )
            rows = int(status.split()[-1])
        else:
            value = await self.pool.fetchval(
                f"SELECT count(*) FROM {table} WHERE {condition} AND {column} < $1", cutoff
            )
            rows = int(value)
        return PrunePart(table=table, rows=rows, kept_in="audit_chain")

    async def _sizes(self) -> dict[str, int]:
        """Rows in each kept table: the planner's estimate once a table is large (counting
        millions of rows would take the prune longer than it saves), else an exact count."""
        estimates = await self.pool.fetch(
            """SELECT relname, reltuples::bigint AS n FROM pg_class
               WHERE relname = ANY($1::text[]) AND relkind = 'r'""",
            list(KEPT),
        )
        sizes: dict[str, int] = {}
        for r in estimates:
            n = int(r["n"])
            if n < 100_000:
                n = int(await self.pool.fetchval(f"SELECT count(*) FROM {r['relname']}"))
            sizes[str(r["relname"])] = n
        return {name: sizes.get(name, 0) for name in KEPT}

    async def last_prunes(self, limit: int = 5) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT at, by, cutoff, removed FROM prunes ORDER BY id DESC LIMIT $1", limit
        )
        return [dict(r) for r in rows]
