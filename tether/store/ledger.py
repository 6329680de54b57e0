"""The cost ledger, budgets and their orders, and the tool-call log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg

from tether.contracts import (
    TokenUsage,
    ToolCallRecord,
)
from tether.store import reads


class Ledger:
    pool: asyncpg.Pool

    async def record_costs(
        self,
        agent: str,
        session_key: str,
        costs: dict[str, float],
        tokens: dict[str, TokenUsage],
        at: datetime | None = None,
    ) -> None:
        """Set this session's cumulative spend per task (never lowers a row: batches may
        arrive late). `at`: when it was spent (now, unless the caller's clock says)."""
        async with self.pool.acquire() as conn, conn.transaction():
            for task_id, usd in costs.items():
                t = tokens.get(task_id) or TokenUsage()
                await conn.execute(
                    """INSERT INTO cost_ledger (session_key, task_id, agent, usd, input_tokens,
                           output_tokens, cache_read_tokens, cache_write_tokens, updated_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9, now()))
                       ON CONFLICT (session_key, task_id) DO UPDATE SET
                           usd = GREATEST(cost_ledger.usd, EXCLUDED.usd),
                           input_tokens = GREATEST(cost_ledger.input_tokens, EXCLUDED.input_tokens),
                           output_tokens =
                               GREATEST(cost_ledger.output_tokens, EXCLUDED.output_tokens),
                           cache_read_tokens =
                               GREATEST(cost_ledger.cache_read_tokens, EXCLUDED.cache_read_tokens),
                           cache_write_tokens = GREATEST(
                               cost_ledger.cache_write_tokens, EXCLUDED.cache_write_tokens),
                           updated_at = EXCLUDED.updated_at""",
                    session_key,
                    task_id,
                    agent,
                    usd,
                    t.input,
                    t.output,
                    t.cache_read,
                    t.cache_write,
                    at,
                )

    async def record_spend_days(
        self, agent: str, session_key: str, day_costs: dict[str, float]
    ) -> None:
        """This session's cumulative spend per UTC day (never lowered: batches may arrive late)."""
        await self.pool.executemany(
            """INSERT INTO spend_days (session_key, agent, day, usd) VALUES ($1, $2, $3, $4)
               ON CONFLICT (session_key, day) DO UPDATE SET
                   usd = GREATEST(spend_days.usd, EXCLUDED.usd), updated_at = now()""",
            [(session_key, agent, date.fromisoformat(d), usd) for d, usd in day_costs.items()],
        )

    async def budget_spend(
        self, agent: str | None, day: date, *, excluding_session: str = ""
    ) -> tuple[float, float]:
        """(the agent's spend on `day`, the whole team's in that day's month), leaving out one
        session (the one asking adds its own, live). No agent: the team's spend that day."""
        return await reads.budget_spend(self.pool, agent, day, excluding_session)

    async def spend_per_agent(self, day: date) -> dict[str, float]:
        return await reads.spend_per_agent(self.pool, day)

    async def add_budget_order(self, scope: str, limit_usd: float, order: dict[str, Any]) -> int:
        value = await self.pool.fetchval(
            """INSERT INTO budget_orders (scope, limit_usd, order_json) VALUES ($1, $2, $3)
               RETURNING id""",
            scope,
            limit_usd,
            order,
        )
        return int(value)

    async def budget_orders(self, scopes: list[str]) -> list[dict[str, Any]]:
        """The orders stored for these scopes, oldest first (each is verified where it is used)."""
        return await reads.budget_order_rows(self.pool, scopes)

    async def record_tool_calls(
        self, agent: str, session_key: str, calls: list[ToolCallRecord]
    ) -> None:
        await self.pool.executemany(
            """INSERT INTO tool_calls (session_key, seq, agent, task_id, at, tool, ok, action,
                   signature, error, exit_code)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT (session_key, seq) DO NOTHING""",
            [
                (
                    session_key,
                    c.seq,
                    agent,
                    c.task_id,
                    c.at,
                    c.call.tool,
                    c.call.ok,
                    c.call.action,
                    c.call.signature,
                    c.call.error,
                    c.call.exit_code,
                )
                for c in calls
            ],
        )

    async def tool_calls(self, agent: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM tool_calls WHERE agent = $1 ORDER BY at DESC, seq DESC LIMIT $2",
            agent,
            limit,
        )
        return [dict(r) for r in rows]

    async def task_cost(self, task_id: str, *, excluding_session: str = "") -> float:
        """What the task cost: its sessions' rows, and what a prune summed of older ones."""
        value = await self.pool.fetchval(
            """SELECT (SELECT COALESCE(SUM(usd), 0) FROM cost_ledger
                       WHERE task_id = $1 AND session_key <> $2)
                    + (SELECT COALESCE(SUM(usd), 0) FROM cost_days WHERE task_id = $1)""",
            task_id,
            excluding_session,
        )
        return float(value)

    async def completed_task_costs(self, kind: str | None, window: int) -> list[float]:
        """Total cost of the most recently completed tasks (of `kind`, when given), pruned
        ledger rows included (from their rollup)."""
        rows = await self.pool.fetch(
            """SELECT t.id, COALESCE(s.ledger, 0) + COALESCE(s.days, 0) AS usd
               FROM tasks t CROSS JOIN LATERAL (
                   SELECT (SELECT SUM(usd) FROM cost_ledger l WHERE l.task_id = t.id) AS ledger,
                          (SELECT SUM(usd) FROM cost_days d WHERE d.task_id = t.id) AS days
               ) AS s
               WHERE t.state = 'done' AND ($1::text IS NULL OR t.spec->>'kind' = $1)
                 AND (s.ledger IS NOT NULL OR s.days IS NOT NULL)
               ORDER BY t.updated_at DESC LIMIT $2""",
            kind,
            window,
        )
        return [float(r["usd"]) for r in rows]
