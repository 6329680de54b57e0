"""The schema: numbered .sql files beside this module, applied once each, in order, by any
number of processes at once; an applied migration is never edited (its checksum is kept)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

from tether.errors import TetherError

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


def shipped() -> list[Migration]:
    """The migrations this Tether ships, oldest first (the .sql files beside this module)."""
    found = []
    for entry in resources.files(__name__).iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append(Migration(int(version), name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


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
        for m in shipped():
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
