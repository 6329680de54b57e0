"""The audit chain: every audited write appends an entry chained to the one before, anchored in
Temporal; `tether audit verify` names the first entry changed, removed or inserted, a chain
rewritten from some entry on, and a cut tail; `tether audit export` writes JSON Lines."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

import worker as tether_worker
from tests.support import keys
from tests.support.cli import tether
from tests.support.helpers import clean_environment
from tether.config import TetherConfig
from tether.contracts import AuditHead, InboxItem, RefusalRecord
from tether.names import AUDIT_ANCHOR_WORKFLOW
from tether.store import Store, connect_pool, migrate
from tether.store.audit import entry_body, entry_hash


async def _events(store: Store, n: int, tag: str) -> None:
    """Audited writes of every kind, through the store's own functions."""
    for i in range(n):
        match i % 4:
            case 0:
                await store.record_refusal(
                    RefusalRecord(
                        workflow_id=f"deploy-web-{tag}{i}",
                        workflow_type="DeploymentWorkflow",
                        handler="approve",
                        kind="signal",
                        reason="the approval or order is not signed with the founder's key",
                        at=datetime.now(UTC),
                    )
                )
            case 1:
                await store.log_order("unblock", f"task-{tag}{i}", "founder", True, "", "task")
            case 2:
                item = InboxItem(
                    key=f"{tag}-{i}",
                    kind="pseudo_work",
                    subject=f"coder-{tag}",
                    title="no artifact",
                )
                await store.post_inbox(item)
            case _:
                await store.audit(f"deploy-{tag}{i}", "web", "requested", "coder", {}, None)


async def _anchor(client: Client, queue: str) -> AuditHead:
    head: AuditHead = await client.execute_workflow(
        AUDIT_ANCHOR_WORKFLOW,
        id=f"anchor-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=AuditHead,
    )
    return head


async def test_the_chain_verifies_and_names_each_change_a_database_user_makes(
    client: Client, fresh_db: str, temporal_address: str, tmp_path: Path
) -> None:
    pool = await connect_pool(fresh_db)
    await migrate(pool)
    store = Store(pool)
    queue = f"audit-{uuid.uuid4().hex[:8]}"
    env = clean_environment(
        TETHER_HOME=str(keys.write(tmp_path / "home")),
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=fresh_db,
        TETHER_TASK_QUEUE=queue,
    )
    try:
        async with tether_worker.build_worker(client, queue, store, TetherConfig(), keys.KEYS):
            await _events(store, 12, "a")
            first = await _anchor(client, queue)
            assert first.seq == 12
            await _events(store, 3, "b")
            assert (await _anchor(client, queue)).seq == 15

        # Untouched, it verifies.
        said = await tether(env, "audit", "verify")
        assert said.code == 0, said.err
        assert "15 entries, checked against 2 anchors" in said.out

        # Exported, one entry a line, each line's hash its own.
        out = tmp_path / "audit.jsonl"
        said = await tether(env, "audit", "export", "--output", str(out))
        assert said.code == 0 and "wrote 15 audit entries" in said.out, said.err
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [e["seq"] for e in lines] == list(range(1, 16))
        for entry in lines:
            assert entry_hash(entry["prev"], _body(entry)) == entry["hash"]
        assert {e["kind"] for e in lines} >= {
            "message_refused",
            "founder_order",
            "inbox_posted",
            "deploy_requested",
        }

        async def tampered(sql: str) -> str:
            """Run `sql` on the chain, say what verify says, and put the chain back."""
            async with pool.acquire() as conn:
                await conn.execute("CREATE TEMP TABLE kept AS SELECT * FROM audit_chain")
                await conn.execute(sql)
                said = await tether(env, "audit", "verify")
                await conn.execute("TRUNCATE audit_chain")
                await conn.execute("INSERT INTO audit_chain SELECT * FROM kept")
                await conn.execute("DROP TABLE kept")
            assert said.code == 1, said.out
            return said.err

        # One entry changed: a refusal's reason softened.
        err = await tampered(
            "UPDATE audit_chain SET body = replace(body, 'not signed', 'signed') WHERE seq = 5"
        )
        assert "entry 5 changed (its hash does not match its content)" in err
        # One removed.
        err = await tampered("DELETE FROM audit_chain WHERE seq = 7")
        assert "entry 7 removed" in err
        # The last five removed: the anchor at 15 says the chain was longer.
        err = await tampered("DELETE FROM audit_chain WHERE seq > 10")
        assert "the chain was cut: it ends at entry 10" in err
        assert "entries 11 to 15 removed" in err
        # Changed with its hash recomputed: the next entry's link gives it away.
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT body, prev FROM audit_chain WHERE seq = 4")
        body = row["body"].replace("requested", "cancelled")
        digest = entry_hash(row["prev"], body)
        err = await tampered(
            f"UPDATE audit_chain SET body = '{body}', hash = '{digest}' WHERE seq = 4"
        )
        assert "entry 4 changed (entry 5 was chained to another version of it)" in err

        # Everything from entry 3 on rewritten consistently, hashes and links and all: only
        # Temporal's anchor, outside the database, can tell.
        await _rewrite_from(pool, 3)
        said = await tether(env, "audit", "verify")
        assert said.code == 1
        assert "the chain up to entry 12 was rewritten: Temporal anchored entry 12" in said.err
    finally:
        await pool.close()


async def _rewrite_from(pool: asyncpg.Pool, start: int) -> None:
    """What someone with the database and this module could do: change entry `start` and
    recompute every hash and link after it."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("SELECT * FROM audit_chain WHERE seq >= $1 ORDER BY seq", start)
        prev = await conn.fetchval("SELECT hash FROM audit_chain WHERE seq = $1", start - 1)
        for row in rows:
            entry = json.loads(row["body"])
            if row["seq"] == start:
                entry["actor"] = "someone else"
            body = _body(entry)
            digest = entry_hash(prev, body)
            await conn.execute(
                "UPDATE audit_chain SET body = $2, prev = $3, hash = $4 WHERE seq = $1",
                row["seq"],
                body,
                prev,
                digest,
            )
            prev = digest


def _body(entry: dict[str, Any]) -> str:
    """An exported (or stored) entry's canonical JSON again, from its fields."""
    at = datetime.fromisoformat(entry["at"])
    return entry_body(
        entry["seq"], at, entry["kind"], entry["subject"], entry["actor"], entry["detail"]
    )
