"""What waits for the founder, and the orders the founder signed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from tether.contracts import (
    InboxItem,
)
from tether.store import audit, reads


class Inbox:
    pool: asyncpg.Pool

    async def post_inbox(self, item: InboxItem) -> tuple[int, bool]:
        """Add an item unless one with the same key exists. Returns (id, newly added)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """INSERT INTO inbox (key, kind, subject, title, detail, action, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()))
                   ON CONFLICT (key) DO NOTHING RETURNING id""",
                item.key,
                item.kind,
                item.subject,
                item.title,
                item.detail,
                item.action,
                item.created_at,
            )
            if row is not None:
                said = {"id": row["id"], "kind": item.kind, "title": item.title}
                await audit.append(
                    conn, "inbox_posted", item.subject, "tether", said, item.created_at
                )
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

    async def inbox(
        self, include_cleared: bool = False, limit: int = reads.INBOX_PAGE
    ) -> list[InboxItem]:
        """The newest `limit` items (open ones, unless `include_cleared`), newest first."""
        rows = await reads.inbox_rows(self.pool, include_cleared, limit=limit)
        return [InboxItem.model_validate(reads.inbox_fields(r)) for r in rows]

    async def inbox_item(self, item_id: int) -> InboxItem | None:
        row = await self.pool.fetchrow(
            """SELECT id, key, kind, subject, title, detail, action, created_at, cleared_at
               FROM inbox WHERE id = $1""",
            item_id,
        )
        return InboxItem.model_validate(reads.inbox_fields(row)) if row is not None else None

    async def acknowledge(self, ids: list[int], at: datetime | None = None) -> list[int]:
        """Clear the given notices (items without an action); returns the ids cleared. An item
        with an action is cleared only by acting on it, never by acknowledging it. `at`: when
        (now, unless the caller's clock says)."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """UPDATE inbox SET cleared_at = COALESCE($2, now())
                   WHERE id = ANY($1::bigint[]) AND cleared_at IS NULL AND action = ''
                   RETURNING id, subject, kind""",
                ids,
                at,
            )
            for r in sorted(rows, key=lambda r: int(r["id"])):
                said = {"id": r["id"], "kind": r["kind"]}
                await audit.append(conn, "inbox_acknowledged", r["subject"], "founder", said, at)
        return sorted(int(r["id"]) for r in rows)

    async def clear_inbox(self, *, subject: str, kinds: list[str]) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """UPDATE inbox SET cleared_at = now()
                   WHERE subject = $1 AND kind = ANY($2::text[]) AND cleared_at IS NULL
                   RETURNING id, kind""",
                subject,
                kinds,
            )
            if rows:
                said = {"ids": sorted(int(r["id"]) for r in rows), "kinds": kinds}
                await audit.append(conn, "inbox_cleared", subject, "tether", said)
        return len(rows)

    async def open_inbox_count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM inbox WHERE cleared_at IS NULL"))

    async def log_order(
        self, action: str, subject: str, by: str, accepted: bool, reason: str, judged_for: str
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO founder_orders (action, subject, by, accepted, reason, judged_for)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                action,
                subject,
                by,
                accepted,
                reason,
                judged_for,
            )
            said = {"action": action, "accepted": accepted, "reason": reason, "for": judged_for}
            await audit.append(conn, "founder_order", subject, by, said)

    async def founder_orders(self, subject: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM founder_orders WHERE subject = $1 ORDER BY id", subject
        )
        return [dict(r) for r in rows]
