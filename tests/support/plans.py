"""The query plans of the founder's reads: a connection that answers every query as asked and
keeps, beside each answer, what PostgreSQL did to find it (EXPLAIN ANALYZE)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg


@dataclass
class Plan:
    sql: str
    tree: dict[str, Any]

    def nodes(self) -> list[dict[str, Any]]:
        found, todo = [], [self.tree]
        while todo:
            node = todo.pop()
            found.append(node)
            todo += node.get("Plans", [])
        return found

    def seq_scans(self) -> list[str]:
        return [n["Relation Name"] for n in self.nodes() if n["Node Type"] == "Seq Scan"]

    def rows_read(self) -> int:
        """The most rows any scan of a table returned or filtered out, per loop."""
        most = 0
        for n in self.nodes():
            if "Relation Name" in n:
                read = n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0)
                most = max(most, read)
        return most


@dataclass
class Explaining:
    """Duck-types the pool and connection methods the reads use."""

    conn: asyncpg.Connection
    plans: list[Plan] = field(default_factory=list)

    async def _explain(self, sql: str, args: tuple[Any, ...]) -> None:
        raw = await self.conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
        tree = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        self.plans.append(Plan(" ".join(sql.split()), tree))

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        await self._explain(sql, args)
        return await self.conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        await self._explain(sql, args)
        return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self._explain(sql, args)
        return await self.conn.fetchval(sql, *args)
