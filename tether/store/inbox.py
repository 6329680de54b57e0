"""What waits for the founder, and the orders the founder signed."""

from __future__ import annotations

from typing import Any

import asyncpg

from tether.contracts import (
    InboxItem,
)
from tether.store import reads


class Inbox:
    pool: asyncpg.Pool

    async def post_inbox(self, item: InboxItem) -> tuple[int, bool]:
        """Add an item unless one with the same key exists. Returns (id, newly added)."""
        row = await self.pool.fetchrow(
            """INSERT INTO inbox (key, kind, subject, title, detail, action)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (key) DO NOTHING RETURNING id""",
            item.key,
            item.kind,
            item.subject,
            item.title,
            item.detail,
            item.action,
        )
        if row is not None:
            return int(row["id"]), True
        existing = await self.pool.fetchval("SELECT id FROM inbox WHERE key = $1", item.key)
        return int(existing), False

    async def mark_delivery(self, item_id: int, error: str | None) -> None:
        await self.pool.execute(
            """UPDATE inbox SET delivered_at = CASE WHEN $2::text IS NULL THEN now() END,
                                delivery_error = $2
               WHERE id = $1""",
            item_id,
            error,
        )

    async def inbox(self, include_cleared: bool = False) -> list[InboxItem]:
        rows = await reads.inbox_rows(self.pool, include_cleared)
        return [InboxItem.model_validate(reads.inbox_fields(r)) for r in rows]

    async def inbox_item(self, item_id: int) -> InboxItem | None:
        row = await self.pool.fetchrow(
            """SELECT id, key, kind, subject, title, detail, action, created_at, cleared_at
               FROM inbox WHERE id = $1""",
            item_id,
        )
        return InboxItem.model_validate(reads.inbox_fields(row)) if row is not None else None

    async def acknowledge(self, ids: list[int]) -> list[int]:
        """Clear the given notices (items without an action); returns the ids cleared. An item
        with an action is cleared only by acting on it, never by acknowledging it."""
        rows = await self.pool.fetch(
            """UPDATE inbox SET cleared_at = now()
               WHERE id = ANY($1::bigint[]) AND cleared_at IS NULL AND action = ''
               RETURNING id""",
            ids,
        )
        return sorted(int(r["id"]) for r in rows)

    async def clear_inbox(self, *, subject: str, kinds: list[str]) -> int:
        result = await self.pool.execute(
            """UPDATE inbox SET cleared_at = now()
               WHERE subject = $1 AND kind = ANY($2::text[]) AND cleared_at IS NULL""",
            subject,
            kinds,
        )
        return int(result.split()[-1])

    async def open_inbox_count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM inbox WHERE cleared_at IS NULL"))

    async def log_order(
        self, action: str, subject: str, by: str, accepted: bool, reason: str, judged_for: str
    ) -> None:
        await self.pool.execute(
            """INSERT INTO founder_orders (action, subject, by, accepted, reason, judged_for)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            action,
            subject,
            by,
            accepted,
            reason,
            judged_for,
        )

    async def founder_orders(self, subject: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM founder_orders WHERE subject = $1 ORDER BY id", subject
        )
        return [dict(r) for r in rows]
