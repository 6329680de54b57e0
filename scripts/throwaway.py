"""A throwaway stack for the scripts: embedded PostgreSQL (migrated) and a Temporal dev server on
free ports in a temporary folder, torn down on exit. Nothing the user runs is touched."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.store import Store, connect_pool, migrate  # noqa: E402
from tether import seals  # noqa: E402
from tether.client import connect  # noqa: E402
from tether.keys import load_private, write_key  # noqa: E402
from tether.ops.stack import EmbeddedPostgres, free_port, start_temporal_dev_server  # noqa: E402


@dataclass
class Throwaway:
    client: Client  # sealed with the founder's key
    store: Store
    folder: Path
    # Temporal's HTTP API, when asked for.
    http_url: str | None
    # The workers' trust and signer (for build_worker), and the gateway's signer.
    keys: tuple[seals.Trust, seals.Signer]
    gateway: seals.Signer
    address: str


@asynccontextmanager
async def throwaway_stack(http_api: bool = False) -> AsyncIterator[Throwaway]:
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", port=free_port())
        pg.start()
        http_port = free_port() if http_api else None
        env = await start_temporal_dev_server(
            port=free_port(), ui_port=None, http_port=http_port, db_file=None
        )
        home = Path(tmp) / "keys"
        signers = {}
        for role in seals.ROLES:
            path, _ = write_key(home, role)
            signers[role] = seals.Signer(role, load_private(path, role))
        trust = seals.Trust({role: (s.public_key,) for role, s in signers.items()})
        try:
            address = env.client.service_client.config.target_host
            client = await connect(address, "default", signer=signers["founder"])
            pool = await connect_pool(pg.url)
            try:
                await migrate(pool)
                http_url = f"http://127.0.0.1:{http_port}" if http_port else None
                yield Throwaway(
                    client,
                    Store(pool),
                    Path(tmp),
                    http_url,
                    (trust, signers["worker"]),
                    signers["gateway"],
                    address,
                )
            finally:
                await pool.close()
        finally:
            await env.shutdown()
            pg.stop()
