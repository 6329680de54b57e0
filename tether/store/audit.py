"""The audit chain: every audited event in one append-only sequence, each entry holding the
hash of the one before, so changing, removing or inserting an entry breaks the chain where it
happened; the chain's head is anchored in Temporal (workflows/audit.py), outside PostgreSQL, so
a chain rewritten from some entry on, or cut short, disagrees with its anchors.

An entry is appended in the same transaction as the row it audits (a refusal, a founder's
order, a deployment's audit row, an inbox item and the founder clearing it, an agent token
minted or revoked), under one advisory lock, so the sequence has no gaps and one order.

`verify` walks entries and anchors as plain data (no I/O): the first entry that was changed,
removed or inserted, and a cut tail, each named.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

# Any constant works; it only has to be the same for every process appending.
_AUDIT_LOCK = 0x7E7E_0002
GENESIS = "0" * 64


def entry_body(seq: int, at: datetime, kind: str, subject: str, actor: str, detail: Any) -> str:
    """The entry's canonical JSON: what is hashed, stored as is."""
    entry = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(),
        "kind": kind,
        "subject": subject,
        "actor": actor,
        "detail": detail,
    }
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(prev: str, body: str) -> str:
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


async def append(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    kind: str,
    subject: str,
    actor: str,
    detail: Any,
    at: datetime | None = None,
) -> int:
    """Append an entry inside the caller's transaction; its sequence number."""
    at = at or datetime.now(UTC)
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _AUDIT_LOCK)
    head = await conn.fetchrow("SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1")
    seq, prev = (int(head["seq"]) + 1, str(head["hash"])) if head else (1, GENESIS)
    body = entry_body(seq, at, kind, subject, actor, detail)
    await conn.execute(
        """INSERT INTO audit_chain (seq, at, kind, subject, body, prev, hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        seq,
        at,
        kind,
        subject[:200],
        body,
        prev,
        entry_hash(prev, body),
    )
    return seq


@dataclass(frozen=True)
class Anchor:
    """The chain's head as Temporal recorded it: entry `seq` had `hash` at `at`."""

    seq: int
    hash: str
    at: datetime
    where: str = ""


@dataclass
class Verdict:
    entries: int = 0
    anchors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(rows: Iterable[tuple[int, str, str, str]], anchors: Iterable[Anchor]) -> Verdict:
    """Walk the chain (rows of seq, body, prev, hash, in seq order) against its anchors."""
    check = ChainCheck(anchors)
    for row in rows:
        check.add(*row)
    return check.finish()


class ChainCheck:
    """The chain walked one entry at a time (a year's chain does not fit in memory): the first
    entry that was changed, removed or inserted is named, and a tail cut after the newest
    anchor."""

    def __init__(self, anchors: Iterable[Anchor]) -> None:
        self.anchors = sorted(anchors, key=lambda a: a.seq)
        self.by_seq: dict[int, list[Anchor]] = {}
        for anchor in self.anchors:
            self.by_seq.setdefault(anchor.seq, []).append(anchor)
        self.verdict = Verdict(anchors=len(self.anchors))
        self.expected_seq, self.expected_prev, self.last_seq = 1, GENESIS, 0

    def add(self, seq: int, body: str, prev: str, stored: str) -> None:
        verdict = self.verdict
        verdict.entries += 1
        expected = self.expected_seq
        self.last_seq, self.expected_seq = seq, seq + 1
        if verdict.problems:
            return  # the first break is named; the rest is counted
        problem = None
        if seq != expected:
            gone = (
                f"entry {expected}" if seq == expected + 1 else f"entries {expected} to {seq - 1}"
            )
            problem = f"{gone} removed (the chain goes from entry {expected - 1} to {seq})"
        elif _said_seq(body) != seq:
            problem = (
                f"entry {seq} is not the entry its content says ({_said_seq(body)}): an entry was "
                "inserted or removed before it and the rest renumbered"
            )
        elif entry_hash(prev, body) != stored:
            problem = f"entry {seq} changed (its hash does not match its content)"
        elif prev != self.expected_prev:
            problem = f"entry {seq - 1} changed (entry {seq} was chained to another version of it)"
        else:
            for anchor in self.by_seq.get(seq, []):
                if anchor.hash != stored:
                    problem = (
                        f"the chain up to entry {seq} was rewritten: Temporal anchored entry {seq} "
                        f"with another hash at {anchor.at:%Y-%m-%d %H:%M:%S} UTC {anchor.where}"
                    ).rstrip()
                    break
        if problem:
            verdict.problems.append(problem)
        self.expected_prev = stored

    def finish(self) -> Verdict:
        newest = self.anchors[-1] if self.anchors else None
        last = self.last_seq
        if newest is not None and newest.seq > last:
            gone = (
                f"entry {newest.seq}"
                if newest.seq == last + 1
                else (f"entries {last + 1} to {newest.seq}")
            )
            self.verdict.problems.append(
                f"the chain was cut: it ends at entry {last}, but Temporal anchored entry "
                f"{newest.seq} at {newest.at:%Y-%m-%d %H:%M:%S} UTC ({gone} removed)"
            )
        return self.verdict


def _said_seq(body: str) -> int | None:
    try:
        said = json.loads(body).get("seq")
    except (ValueError, AttributeError):
        return None
    return said if isinstance(said, int) else None


class Audit:
    pool: asyncpg.Pool

    async def audit_event(self, kind: str, subject: str, actor: str, detail: Any) -> int:
        """An event audited on its own (no row of another table with it)."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await append(conn, kind, subject, actor, detail)

    async def audit_head(self) -> tuple[int, str] | None:
        row = await self.pool.fetchrow(
            "SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1"
        )
        return (int(row["seq"]), str(row["hash"])) if row else None

    async def audit_rows(self, after: int = 0) -> AsyncIterator[asyncpg.Record]:
        """Every entry after `after`, in order, read in batches (a year's chain is millions)."""
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            async for row in conn.cursor(
                """SELECT seq, at, kind, subject, body, prev, hash FROM audit_chain
                   WHERE seq > $1 ORDER BY seq""",
                after,
                prefetch=10_000,
            ):
                yield row
