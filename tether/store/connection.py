"""The pool every part of the store shares."""

from __future__ import annotations

import asyncpg

from tether.store import reads


async def connect_pool(dsn: str) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8, init=reads.init_connection)
    except (OSError, asyncpg.PostgresError) as exc:
        raise reads.cannot_connect(exc) from exc
    assert pool is not None
    return pool
