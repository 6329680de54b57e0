"""Sessions, their figures and processes, the credentials their startup checked, and the
handoffs (the knowledge base) they leave."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from tether.contracts import (
    CredentialStatus,
    SessionFigures,
    SessionView,
)
from tether.store import reads


class Sessions:
    pool: asyncpg.Pool

    async def record_figures(
        self, agent: str, started_at: datetime, figures: SessionFigures
    ) -> None:
        """What `tether status` shows of the session, unless newer figures are there."""
        await self.pool.execute(
            """UPDATE sessions SET figures = $3, figures_at = $4
               WHERE agent = $1 AND started_at = $2 AND state <> 'ended'
                 AND (figures_at IS NULL OR figures_at <= $4)""",
            agent,
            started_at,
            figures.model_dump(mode="json"),
            figures.at,
        )

    async def process_started(self, agent: str, process: str, isolation: str = "sandbox") -> None:
        """The runner started the agent's process `process` (runtime session:attempt), in its
        sandbox or not (`isolation`)."""
        await self.pool.execute(
            """UPDATE sessions SET process_started = $2, isolation = $3
               WHERE agent = $1 AND state <> 'ended'""",
            agent,
            process,
            isolation,
        )

    async def record_session(self, session: SessionView, workflow_id: str, run_id: str) -> None:
        """Upsert the session's row; a snapshot older than the row (a lower `seq`) or any write
        after the session ended changes nothing."""
        await self.pool.execute(
            """INSERT INTO sessions (workflow_id, run_id, agent, external_id, runtime, state,
                                     task_id, started_at, ended_at, end_reason, blocker,
                                     credentials, artifact_result, pseudo_work, seq, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now())
               ON CONFLICT (agent, started_at) DO UPDATE SET
                   run_id = excluded.run_id, external_id = excluded.external_id,
                   state = excluded.state, task_id = excluded.task_id,
                   ended_at = excluded.ended_at, end_reason = excluded.end_reason,
                   blocker = excluded.blocker, credentials = excluded.credentials,
                   artifact_result = excluded.artifact_result,
                   pseudo_work = excluded.pseudo_work, seq = excluded.seq, updated_at = now()
               WHERE sessions.state <> 'ended' AND sessions.seq <= excluded.seq""",
            workflow_id,
            run_id,
            session.agent,
            session.external_id,
            session.runtime,
            session.state.value,
            session.task_id,
            session.started_at,
            session.ended_at,
            session.end_reason,
            session.blocker.model_dump(mode="json") if session.blocker else None,
            [c.model_dump(mode="json") for c in session.credentials],
            session.artifact_result.model_dump(mode="json") if session.artifact_result else None,
            session.pseudo_work,
            session.seq,
        )

    async def list_sessions(
        self, agent: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            """SELECT agent, external_id, runtime, state, task_id, started_at, ended_at,
                      end_reason, blocker, artifact_result, pseudo_work, seq
               FROM sessions WHERE ($1::text IS NULL OR agent = $1)
               ORDER BY started_at DESC LIMIT $2""",
            agent,
            limit,
        )
        return [dict(r) for r in rows]

    async def latest_sessions(self) -> list[dict[str, Any]]:
        """Each agent's most recent session."""
        return [dict(r) for r in await reads.latest_session_rows(self.pool)]

    async def recent_pseudo_work(self, days: int = 7) -> list[dict[str, Any]]:
        return [dict(r) for r in await reads.pseudo_work_rows(self.pool, days)]

    async def pseudo_work_counts(self) -> dict[str, tuple[int, int]]:
        """Per agent: (sessions flagged as pseudo-work, sessions ended), in the last
        `reads.COUNT_DAYS` days."""
        rows = await reads.ended_counts(self.pool)
        return {r["agent"]: (r["flagged"], r["ended"]) for r in rows}

    async def record_credentials(self, statuses: list[CredentialStatus]) -> None:
        await self.pool.executemany(
            """INSERT INTO credential_status (name, kind, ok, verified, reason, expires_at,
                                              checked_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (name) DO UPDATE SET
                   kind = excluded.kind, ok = excluded.ok, verified = excluded.verified,
                   reason = excluded.reason,
                   expires_at = COALESCE(excluded.expires_at, credential_status.expires_at),
                   checked_at = excluded.checked_at
               WHERE credential_status.checked_at <= excluded.checked_at""",
            [
                (s.name, s.kind, s.ok, s.verified, s.reason, s.expires_at, s.checked_at)
                for s in statuses
                if s.checked_at is not None
            ],
        )

    async def credential_statuses(self) -> list[CredentialStatus]:
        rows = await self.pool.fetch("SELECT * FROM credential_status ORDER BY name")
        return [CredentialStatus.model_validate(dict(r)) for r in rows]

    async def take_handoff(self, agent: str, session_key: str) -> tuple[str, dict[str, Any]] | None:
        """The newest handoff left for the agent (brief and state), now marked as read by this
        session. Idempotent per session: a retried call returns the same handoff again."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """UPDATE handoffs SET consumed_at = now(), consumed_by = $2
                   WHERE agent = $1 AND consumed_at IS NULL""",
                agent,
                session_key,
            )
            row = await conn.fetchrow(
                """SELECT brief, state FROM handoffs WHERE agent = $1 AND consumed_by = $2
                   ORDER BY created_at DESC, id DESC LIMIT 1""",
                agent,
                session_key,
            )
        return None if row is None else (str(row["brief"]), dict(row["state"] or {}))

    async def archive_handoff(
        self, agent: str, session_key: str, brief: str, state: dict[str, Any]
    ) -> int:
        """Leave a handoff for the agent's next session; once per session (retries are no-ops)."""
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "SELECT id FROM handoffs WHERE session_key = $1", session_key
            )
            if found is not None:
                return int(found)
            return int(
                await conn.fetchval(
                    """INSERT INTO handoffs (agent, brief, state, session_key)
                       VALUES ($1, $2, $3, $4) RETURNING id""",
                    agent,
                    brief,
                    state,
                    session_key,
                )
            )
