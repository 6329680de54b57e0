"""What was refused: sealed messages a guard turned away, connections a sandbox refused."""

from __future__ import annotations

from typing import Any

import asyncpg

from tether.contracts import (
    RefusalRecord,
)
from tether.store import audit, reads


class Refusals:
    pool: asyncpg.Pool

    async def record_refusal(self, r: RefusalRecord) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO refused_messages (at, workflow_id, workflow_type, handler, kind,
                                                 reason, role, signer, agent)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                r.at,
                r.workflow_id,
                r.workflow_type,
                r.handler,
                r.kind,
                r.reason,
                r.role,
                r.signer,
                r.agent,
            )
            sender = r.signer or r.role or "unsealed"
            detail = {"handler": r.handler, "kind": r.kind, "reason": r.reason, "agent": r.agent}
            await audit.append(conn, "message_refused", r.workflow_id, sender, detail, r.at)

    async def refusals(self, limit: int = 20) -> tuple[int, list[dict[str, Any]]]:
        """(how many messages were refused in all, the most recent ones)."""
        total = await self.pool.fetchval("SELECT count(*) FROM refused_messages")
        rows = await reads.refusal_rows(self.pool, limit)
        return int(total or 0), [dict(r) for r in rows]

    async def record_egress_refusal(
        self, agent: str, process: str, host: str, port: int | None, detail: str
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO egress_refusals (agent, process, host, port, detail)
                   VALUES ($1, $2, $3, $4, $5)""",
                agent,
                process,
                host,
                port,
                detail,
            )
            said = {"host": host, "port": port, "detail": detail}
            await audit.append(conn, "egress_refused", agent, process, said)

    async def egress_refusals(
        self, agent: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The most recent connections a sandbox refused, newest first."""
        rows = await self.pool.fetch(
            """SELECT at, agent, process, host, port, detail FROM egress_refusals
               WHERE ($1::text IS NULL OR agent = $1) ORDER BY id DESC LIMIT $2""",
            agent,
            limit,
        )
        return [dict(r) for r in rows]
