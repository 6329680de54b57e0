"""Agent tokens: minted, stored as hashes, revoked."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import asyncpg

from tether.store import audit

# Agent tokens start with this, so a leaked one is recognisable (and redacted as a secret).
AGENT_TOKEN_PREFIX = "tether_agent_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    pool: asyncpg.Pool

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
            prefix = token[: len(AGENT_TOKEN_PREFIX) + 6]
            await conn.execute(
                """INSERT INTO agent_tokens (agent, token_hash, prefix, created_by)
                   VALUES ($1, $2, $3, $4)""",
                agent,
                token_hash(token),
                prefix,
                by,
            )
            said = {"prefix": prefix, "rotated": rotate}
            await audit.append(conn, "token_minted", agent, by, said)
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
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                """UPDATE agent_tokens SET revoked_at = now(), revoked_by = $2
                   WHERE agent = $1 AND revoked_at IS NULL""",
                agent,
                by,
            )
            revoked = int(done.split()[-1])
            if revoked:
                await audit.append(conn, "tokens_revoked", agent, by, {"count": revoked})
        return revoked

    async def agent_tokens(self, agent: str | None = None) -> list[dict[str, Any]]:
        """Every token minted (hashes left out), newest first."""
        rows = await self.pool.fetch(
            """SELECT id, agent, prefix, created_at, created_by, revoked_at, revoked_by,
                      last_used_at
               FROM agent_tokens WHERE $1::text IS NULL OR agent = $1 ORDER BY id DESC""",
            agent,
        )
        return [dict(r) for r in rows]
