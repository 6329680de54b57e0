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


def store_outage(exc: BaseException) -> bool:
    """A connection to PostgreSQL failed (refused, dropped, never made) or the server is
    shutting down or starting up: retrying later can succeed."""
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.OperatorInterventionError,
    ):
        return True
    if isinstance(exc, OSError | asyncpg.exceptions.ConnectionDoesNotExistError):
        frame = exc.__traceback__
        while frame is not None:
            if "asyncpg" in frame.tb_frame.f_code.co_filename:
                return True
            frame = frame.tb_next
    return False
