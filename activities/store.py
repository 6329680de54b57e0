"""PostgreSQL: schema migrations and every table Tether keeps (asyncpg lives here and nowhere else).

Tables: tasks and task_events (the task read model), sessions, inbox (what waits for the founder),
credential_status, handoffs (the knowledge base), deployments, service_state (what runs, the
cooldown), deploy_audit, cost_ledger and tool_calls.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg

from activities import reads
from tether.contracts import (
    CredentialStatus,
    DeployLine,
    InboxItem,
    RefusalRecord,
    SessionFigures,
    SessionView,
    TaskEvent,
    TaskRecord,
    TaskState,
    TaskSummary,
    TaskView,
    TokenUsage,
    ToolCallRecord,
)
from tether.errors import TetherError
from tether.names import task_workflow_id

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


async def connect_pool(dsn: str) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8, init=reads.init_connection)
    except (OSError, asyncpg.PostgresError) as exc:
        raise reads.cannot_connect(exc) from exc
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


# Agent tokens start with this, so a leaked one is recognisable (and redacted as a secret).
AGENT_TOKEN_PREFIX = "tether_agent_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
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
        self, state: TaskState | None = None, assignee: str | None = None
    ) -> list[TaskView]:
        rows = await reads.task_rows(self.pool, state.value if state else None, assignee)
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

    # --- agent tokens --------------------------------------------------------------------------

    async def mint_agent_token(self, agent: str, by: str, rotate: bool = False) -> str:
        """A new token for `agent`, returned once and stored only as its SHA-256 hash. With
        `rotate`, the agent's other tokens are revoked in the same transaction."""
        token = AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn, conn.transaction():
            if rotate:
                await conn.execute(
                    """UPDATE agent_tokens SET revoked_at = now(), revoked_by = $2
                       WHERE agent = $1 AND revoked_at IS NULL""",
                    agent,
                    by,
                )
            await conn.execute(
                """INSERT INTO agent_tokens (agent, token_hash, prefix, created_by)
                   VALUES ($1, $2, $3, $4)""",
                agent,
                token_hash(token),
                token[: len(AGENT_TOKEN_PREFIX) + 6],
                by,
            )
        return token

    async def agent_for_token(self, token: str) -> str | None:
        """The agent a token names, if it is one of ours and not revoked (its use is noted)."""
        if not token.startswith(AGENT_TOKEN_PREFIX) or len(token) > 200:
            return None
        agent: str | None = await self.pool.fetchval(
            """UPDATE agent_tokens SET last_used_at = now()
               WHERE token_hash = $1 AND revoked_at IS NULL RETURNING agent""",
            token_hash(token),
        )
        return agent

    async def revoke_token(self, token: str, by: str) -> None:
        """Revoke one token (the runner's, when the process it was made for has ended)."""
        await self.pool.execute(
            """UPDATE agent_tokens SET revoked_at = now(), revoked_by = $2
               WHERE token_hash = $1 AND revoked_at IS NULL""",
            token_hash(token),
            by,
        )

    async def revoke_agent_tokens(self, agent: str, by: str) -> int:
        done = await self.pool.execute(
            """UPDATE agent_tokens SET revoked_at = now(), revoked_by = $2
               WHERE agent = $1 AND revoked_at IS NULL""",
            agent,
            by,
        )
        return int(done.split()[-1])

    async def agent_tokens(self, agent: str | None = None) -> list[dict[str, Any]]:
        """Every token minted (hashes left out), newest first."""
        rows = await self.pool.fetch(
            """SELECT id, agent, prefix, created_at, created_by, revoked_at, revoked_by,
                      last_used_at
               FROM agent_tokens WHERE $1::text IS NULL OR agent = $1 ORDER BY id DESC""",
            agent,
        )
        return [dict(r) for r in rows]

    # --- refused messages ----------------------------------------------------------------------

    async def record_refusal(self, r: RefusalRecord) -> None:
        await self.pool.execute(
            """INSERT INTO refused_messages (at, workflow_id, workflow_type, handler, kind, reason,
                                             role, signer, agent)
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

    async def refusals(self, limit: int = 20) -> tuple[int, list[dict[str, Any]]]:
        """(how many messages were refused in all, the most recent ones)."""
        total = await self.pool.fetchval("SELECT count(*) FROM refused_messages")
        rows = await reads.refusal_rows(self.pool, limit)
        return int(total or 0), [dict(r) for r in rows]

    # --- sessions ------------------------------------------------------------------------------

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

    # --- the sandbox's refusals ----------------------------------------------------------------

    async def record_egress_refusal(
        self, agent: str, process: str, host: str, port: int | None, detail: str
    ) -> None:
        await self.pool.execute(
            """INSERT INTO egress_refusals (agent, process, host, port, detail)
               VALUES ($1, $2, $3, $4, $5)""",
            agent,
            process,
            host,
            port,
            detail,
        )

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

    async def task_counts(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT state, count(*) AS n FROM tasks GROUP BY state")
        return {r["state"]: int(r["n"]) for r in rows}

    async def open_inbox_count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM inbox WHERE cleared_at IS NULL"))

    async def pseudo_work_counts(self) -> dict[str, tuple[int, int]]:
        """Per agent: (sessions flagged as pseudo-work, sessions ended)."""
        rows = await self.pool.fetch(
            """SELECT agent, count(*) FILTER (WHERE pseudo_work) AS flagged, count(*) AS ended
               FROM sessions WHERE state = 'ended' GROUP BY agent ORDER BY agent"""
        )
        return {r["agent"]: (r["flagged"], r["ended"]) for r in rows}

    # --- the founder's inbox -------------------------------------------------------------------

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

    # --- credentials, handoffs, deployments ----------------------------------------------------

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

    # --- deployments ------------------------------------------------------------------------

    async def audit(
        self,
        deployment_id: str,
        service: str,
        kind: str,
        actor: str,
        detail: dict[str, Any],
        at: datetime | None,
        line: DeployLine | None = None,
    ) -> None:
        """An audit row; with `line`, the deployment's row says where it is now (its outcome
        is still record_deployment's to write)."""
        if line is not None:
            await self.pool.execute(
                """INSERT INTO deployments (deployment_id, service, environment, commit, ref,
                       agent, state, reason, requested_at, queued, holds_lock)
                   VALUES ($1, $2, $3, COALESCE($4, ''), $5, $6, $7, $8, $9, $10, $11)
                   ON CONFLICT (deployment_id) WHERE deployment_id IS NOT NULL DO UPDATE SET
                       commit = COALESCE($4, deployments.commit), state = excluded.state,
                       reason = excluded.reason, requested_at = excluded.requested_at,
                       queued = excluded.queued, holds_lock = excluded.holds_lock
                   WHERE deployments.finished_at IS NULL""",
                deployment_id,
                service,
                line.environment,
                line.commit,
                line.ref,
                line.agent,
                line.state.value,
                line.reason,
                line.requested_at,
                line.queued,
                line.holds_lock,
            )
        await self.pool.execute(
            """INSERT INTO deploy_audit (deployment_id, service, kind, actor, detail, at)
               VALUES ($1, $2, $3, $4, $5, COALESCE($6, now()))""",
            deployment_id,
            service,
            kind,
            actor,
            detail,
            at,
        )

    async def audit_trail(
        self, *, deployment_id: str | None = None, service: str | None = None
    ) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            """SELECT deployment_id, service, at, actor, kind, detail FROM deploy_audit
               WHERE ($1::text IS NULL OR deployment_id = $1)
                 AND ($2::text IS NULL OR service = $2)
               ORDER BY id""",
            deployment_id,
            service,
        )
        return [dict(r) for r in rows]

    async def deployed(
        self, service: str, environment: str = "staging"
    ) -> tuple[str, str, str] | None:
        """(commit, ref, deployment) running for the service in the environment, if any
        deployment there finished."""
        row = await self.pool.fetchrow(
            """SELECT deployed_commit, deployed_ref, deployed_deployment FROM service_state
               WHERE service = $1 AND environment = $2 AND deployed_commit IS NOT NULL""",
            service,
            environment,
        )
        return None if row is None else (row[0], row[1] or "", row[2] or "")

    async def running_everywhere(self) -> list[dict[str, Any]]:
        """What runs where: one row per service and environment with a finished deployment."""
        return [dict(r) for r in await reads.running_rows(self.pool)]

    async def staging_history(self, service: str, commit: str) -> tuple[Any, Any]:
        """(when `commit` last became what staging runs, when another commit replaced it
        after that): None for what did not happen."""
        since = await self.pool.fetchval(
            """SELECT max(finished_at) FROM deployments
               WHERE service = $1 AND environment = 'staging' AND state = 'done'
                 AND commit = $2""",
            service,
            commit,
        )
        if since is None:
            return None, None
        replaced = await self.pool.fetchval(
            """SELECT min(finished_at) FROM deployments
               WHERE service = $1 AND environment = 'staging' AND state = 'done'
                 AND commit <> $2 AND finished_at > $3""",
            service,
            commit,
            since,
        )
        return since, replaced

    async def claim_rollout(
        self,
        service: str,
        deployment_id: str,
        at: datetime,
        minutes: float,
        busy_until: datetime,
        environment: str = "staging",
    ) -> tuple[bool, datetime | None, str | None, bool]:
        """Take the service's rollout in the environment at `at`: refused while another
        deployment rolls it out (until its `busy_until`), or when another took the slot less
        than `minutes` before. One statement, so concurrent claims cannot both win, whatever the
        lock workflow says; the same deployment claiming again (a retried activity) wins again.
        Returns (allowed, until when it is refused, the deployment in the way, whether that one
        is rolling now)."""
        won = await self.pool.fetchval(
            """INSERT INTO service_state (service, environment, last_rollout_at,
                                          last_rollout_deployment, rolling_deployment,
                                          rolling_until)
               VALUES ($1, $6, $2, $3, $3, $5)
               ON CONFLICT (service, environment) DO UPDATE
                   SET last_rollout_at = EXCLUDED.last_rollout_at,
                       last_rollout_deployment = EXCLUDED.last_rollout_deployment,
                       rolling_deployment = EXCLUDED.rolling_deployment,
                       rolling_until = EXCLUDED.rolling_until
                   WHERE (service_state.rolling_deployment IS NULL
                          OR service_state.rolling_deployment = EXCLUDED.rolling_deployment
                          OR service_state.rolling_until <= EXCLUDED.last_rollout_at)
                     AND (service_state.last_rollout_at IS NULL
                          OR service_state.last_rollout_deployment
                             = EXCLUDED.last_rollout_deployment
                          OR service_state.last_rollout_at
                             <= EXCLUDED.last_rollout_at - make_interval(secs => $4))
               RETURNING last_rollout_deployment""",
            service,
            at,
            deployment_id,
            minutes * 60.0,
            busy_until,
            environment,
        )
        if won is not None:
            return True, None, None, False
        row = await self.pool.fetchrow(
            """SELECT last_rollout_at, last_rollout_deployment, rolling_deployment, rolling_until
               FROM service_state WHERE service = $1 AND environment = $2""",
            service,
            environment,
        )
        assert row is not None
        if row["rolling_deployment"] and row["rolling_until"] > at:
            return False, row["rolling_until"], row["rolling_deployment"], True
        return False, row[0] + timedelta(minutes=minutes), row[1], False

    async def recorded_deployments(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """What PostgreSQL recorded of these deployments (ref, commit, environment, outcome),
        by id."""
        rows = await self.pool.fetch(
            """SELECT deployment_id, ref, commit, environment, state, finished_at FROM deployments
               WHERE deployment_id = ANY($1::text[])""",
            ids,
        )
        return {r["deployment_id"]: dict(r) for r in rows}

    async def record_deployment(
        self,
        deployment_id: str,
        service: str,
        commit: str,
        ref: str,
        agent: str,
        state: str,
        at: datetime,
        environment: str = "staging",
    ) -> None:
        """The deployment's outcome; a finished one becomes what runs for the service in its
        environment."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO deployments (service, commit, ref, agent, state, finished_at,
                       deployment_id, environment)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                   ON CONFLICT (deployment_id) WHERE deployment_id IS NOT NULL
                   DO UPDATE SET state = EXCLUDED.state, finished_at = EXCLUDED.finished_at""",
                service,
                commit,
                ref,
                agent,
                state,
                at,
                deployment_id,
                environment,
            )
            await conn.execute(
                """UPDATE service_state SET rolling_deployment = NULL, rolling_until = NULL
                   WHERE service = $1 AND environment = $3 AND rolling_deployment = $2""",
                service,
                deployment_id,
                environment,
            )
            if state == "done":
                await conn.execute(
                    """INSERT INTO service_state (service, environment, deployed_commit,
                           deployed_ref, deployed_deployment, deployed_at)
                       VALUES ($1, $6, $2, $3, $4, $5)
                       ON CONFLICT (service, environment) DO UPDATE SET
                           deployed_commit = EXCLUDED.deployed_commit,
                           deployed_ref = EXCLUDED.deployed_ref,
                           deployed_deployment = EXCLUDED.deployed_deployment,
                           deployed_at = EXCLUDED.deployed_at""",
                    service,
                    commit,
                    ref,
                    deployment_id,
                    at,
                    environment,
                )

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

    # --- the cost ledger and the tool-call log ------------------------------------------------

    async def record_costs(
        self,
        agent: str,
        session_key: str,
        costs: dict[str, float],
        tokens: dict[str, TokenUsage],
    ) -> None:
        """Set this session's cumulative spend per task (never lowers a row: batches may
        arrive late)."""
        async with self.pool.acquire() as conn, conn.transaction():
            for task_id, usd in costs.items():
                t = tokens.get(task_id) or TokenUsage()
                await conn.execute(
                    """INSERT INTO cost_ledger (session_key, task_id, agent, usd, input_tokens,
                           output_tokens, cache_read_tokens, cache_write_tokens)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                       ON CONFLICT (session_key, task_id) DO UPDATE SET
                           usd = GREATEST(cost_ledger.usd, EXCLUDED.usd),
                           input_tokens = GREATEST(cost_ledger.input_tokens, EXCLUDED.input_tokens),
                           output_tokens =
                               GREATEST(cost_ledger.output_tokens, EXCLUDED.output_tokens),
                           cache_read_tokens =
                               GREATEST(cost_ledger.cache_read_tokens, EXCLUDED.cache_read_tokens),
                           cache_write_tokens = GREATEST(
                               cost_ledger.cache_write_tokens, EXCLUDED.cache_write_tokens),
                           updated_at = now()""",
                    session_key,
                    task_id,
                    agent,
                    usd,
                    t.input,
                    t.output,
                    t.cache_read,
                    t.cache_write,
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
        value = await self.pool.fetchval(
            """SELECT COALESCE(SUM(usd), 0) FROM cost_ledger
               WHERE task_id = $1 AND session_key <> $2""",
            task_id,
            excluding_session,
        )
        return float(value)

    async def completed_task_costs(self, kind: str | None, window: int) -> list[float]:
        """Total cost of the most recently completed tasks (of `kind`, when given)."""
        rows = await self.pool.fetch(
            """SELECT t.id, COALESCE(SUM(l.usd), 0) AS usd
               FROM tasks t JOIN cost_ledger l ON l.task_id = t.id
               WHERE t.state = 'done' AND ($1::text IS NULL OR t.spec->>'kind' = $1)
               GROUP BY t.id, t.updated_at
               ORDER BY t.updated_at DESC LIMIT $2""",
            kind,
            window,
        )
        return [float(r["usd"]) for r in rows]

    async def task_kind(self, task_id: str) -> str | None:
        value = await self.pool.fetchval("SELECT spec->>'kind' FROM tasks WHERE id = $1", task_id)
        return None if value is None else str(value)

    async def deployment_since(self, service: str, since: datetime) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            """SELECT service, commit, ref, agent, finished_at FROM deployments
               WHERE service = $1 AND state = 'done' AND finished_at >= $2
               ORDER BY finished_at DESC LIMIT 1""",
            service,
            since,
        )
        return dict(row) if row else None


def _view(row: Any) -> TaskView:
    return TaskView.model_validate(reads.task_fields(row))
