"""Deployments, what runs where (the cooldown), and each deployment's audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from tether.contracts import (
    DeployLine,
)
from tether.store import audit, reads


class Deployments:
    pool: asyncpg.Pool

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
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO deploy_audit (deployment_id, service, kind, actor, detail, at)
                   VALUES ($1, $2, $3, $4, $5, COALESCE($6, now()))""",
                deployment_id,
                service,
                kind,
                actor,
                detail,
                at,
            )
            said = {"service": service, "kind": kind, **detail}
            await audit.append(conn, f"deploy_{kind}", deployment_id, actor, said, at)

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

    async def deployment_since(self, service: str, since: datetime) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            """SELECT service, commit, ref, agent, finished_at FROM deployments
               WHERE service = $1 AND state = 'done' AND finished_at >= $2
               ORDER BY finished_at DESC LIMIT 1""",
            service,
            since,
        )
        return dict(row) if row else None
