"""The founder's passkeys: enrollments (signed with the founder's key) and their revocation."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import asyncpg

from tether.contracts import PasskeyEnrollment
from tether.store import audit
from tether.store.tokens import token_hash


class Passkeys:
    pool: asyncpg.Pool

    async def add_passkey(self, enrollment: PasskeyEnrollment) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO passkeys (credential_id, name, enrollment, enrolled_at)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (credential_id) DO NOTHING""",
                enrollment.credential_id,
                enrollment.name,
                enrollment.model_dump(mode="json"),
                enrollment.enrolled_at,
            )
            said = {"name": enrollment.name, "rp_id": enrollment.rp_id}
            await audit.append(conn, "passkey_enrolled", enrollment.credential_id, "founder", said)

    async def passkeys(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            """SELECT credential_id, name, enrolled_at, revoked_at, revoked_by FROM passkeys
               ORDER BY enrolled_at"""
        )
        return [dict(r) for r in rows]

    async def revoke_passkey(self, name_or_id: str, by: str) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """UPDATE passkeys SET revoked_at = now(), revoked_by = $2
                   WHERE (credential_id = $1 OR name = $1) AND revoked_at IS NULL
                   RETURNING credential_id, name""",
                name_or_id,
                by,
            )
            for r in rows:
                said = {"name": r["name"]}
                await audit.append(conn, "passkey_revoked", r["credential_id"], by, said)
        return len(rows)

    async def passkey_standing(self, credential_id: str) -> str | None:
        """None when the passkey is enrolled here and not revoked; else why it may not act."""
        row = await self.pool.fetchrow(
            "SELECT name, revoked_at FROM passkeys WHERE credential_id = $1", credential_id
        )
        if row is None:
            return "that passkey is not enrolled on this Tether (`tether founder passkeys`)"
        if row["revoked_at"] is not None:
            return (
                f"the passkey {row['name']!r} was revoked at {row['revoked_at']:%Y-%m-%d %H:%M} UTC"
            )
        return None

    # --- one-time registration links ----------------------------------------------------------

    async def invite_passkey(self, name: str, ttl: timedelta) -> str:
        """A one-time token for registering a passkey named `name`; only its hash is kept."""
        token = secrets.token_urlsafe(32)
        await self.pool.execute(
            """INSERT INTO passkey_invites (token_hash, name, expires_at)
               VALUES ($1, $2, now() + $3)""",
            token_hash(token),
            name,
            ttl,
        )
        return token

    async def open_invite(self, token: str) -> dict[str, Any] | None:
        """The invite this token names, while it is unexpired and not yet used."""
        row = await self.pool.fetchrow(
            """SELECT name, challenge FROM passkey_invites
               WHERE token_hash = $1 AND expires_at > now() AND registered IS NULL""",
            token_hash(token),
        )
        return dict(row) if row else None

    async def invite_challenge(self, token: str, challenge: str) -> None:
        await self.pool.execute(
            "UPDATE passkey_invites SET challenge = $2 WHERE token_hash = $1",
            token_hash(token),
            challenge,
        )

    async def invite_registered(self, token: str, registered: dict[str, Any]) -> bool:
        """The browser's verified registration, once per invite."""
        done = await self.pool.execute(
            """UPDATE passkey_invites SET registered = $2, registered_at = now()
               WHERE token_hash = $1 AND registered IS NULL AND expires_at > now()""",
            token_hash(token),
            registered,
        )
        return done.endswith(" 1")

    async def invite_result(self, token: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT registered FROM passkey_invites WHERE token_hash = $1", token_hash(token)
        )
        return dict(row["registered"]) if row and row["registered"] else None

    async def passkey_enrollment(self, credential_id: str) -> PasskeyEnrollment | None:
        row = await self.pool.fetchrow(
            """SELECT enrollment FROM passkeys
               WHERE credential_id = $1 AND revoked_at IS NULL""",
            credential_id,
        )
        return PasskeyEnrollment.model_validate(row["enrollment"]) if row else None

    async def enrolled_passkeys(self) -> list[PasskeyEnrollment]:
        """Every passkey enrolled and not revoked (their enrollments as signed)."""
        rows = await self.pool.fetch(
            "SELECT enrollment FROM passkeys WHERE revoked_at IS NULL ORDER BY enrolled_at"
        )
        return [PasskeyEnrollment.model_validate(r["enrollment"]) for r in rows]

    async def active_passkeys(self) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT credential_id FROM passkeys WHERE revoked_at IS NULL ORDER BY enrolled_at"
        )
        return [str(r["credential_id"]) for r in rows]
