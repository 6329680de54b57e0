"""worker.py as deployed: several processes on one task queue, started together on an empty
database, sharing the work and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import asyncpg
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from tests.support import keys
from tests.support.helpers import eventually
from tether import client as api
from tether.contracts import ShellCheck, TaskSpec
from tether.store import migrations as store_migrations

ROOT = Path(__file__).resolve().parent.parent


async def test_two_workers_share_a_queue_and_a_fresh_database(
    client: Client, temporal_address: str, fresh_db: str, tmp_path: Path
) -> None:
    queue = f"procs-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TETHER_"))}
    home = keys.write(tmp_path)
    # Closed workflows stay in Temporal as long as tether.toml says (issue 31).
    (home / "tether.toml").write_text("[retention]\ntemporal_days = 45\n")
    env.update(
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=fresh_db,
        TETHER_TASK_QUEUE=queue,
        TETHER_HOME=str(home),
    )
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "worker.py"),
            env=env,
            stdout=log.open("w"),
            stderr=asyncio.subprocess.STDOUT,
        )
        for log in logs
    ]
    try:
        for log in logs:
            await eventually(lambda log=log: "worker polling" in log.read_text(), str(log), 30)
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
        assert described.config.workflow_execution_retention_ttl.ToTimedelta().days == 45

        # The workers write the read model in the database they migrated together.
        for i in range(6):
            task_id = f"w-{uuid.uuid4().hex[:8]}-{i}"
            check = ShellCheck(command="echo ok", stdout_pattern="ok")
            await api.create_task(client, queue, TaskSpec(id=task_id, title="t", checks=[check]))
            await api.claim_task(client, task_id, "coder")
            result = await api.submit_task(client, task_id, "coder", None)
            assert result.done
        conn = await asyncpg.connect(fresh_db)
        try:
            applied = await conn.fetchval("SELECT count(*) FROM tether_schema_migrations")
            assert applied == len(store_migrations.shipped())
            assert await conn.fetchval("SELECT count(*) FROM tasks WHERE state = 'done'") == 6
        finally:
            await conn.close()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(p.wait(), timeout=60) for p in procs]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
