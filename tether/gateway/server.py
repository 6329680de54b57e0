"""Running the gateway: `tether gateway` on its own (a cluster's service), or inside `tether up`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from temporalio.client import Client

from tether.client import connect
from tether.client.connection import sealed
from tether.config import Settings, TetherConfig, load_config
from tether.gateway.app import Gateway, build_app
from tether.store import Store, connect_pool, migrate
from tether.trust.keys import signer
from tether.trust.seals import Signer

log = logging.getLogger("tether.gateway")


@asynccontextmanager
async def listening(
    client: Client,
    store: Store,
    config: TetherConfig,
    task_queue: str,
    home: Path,
    bind: str,
    gateway_signer: Signer,
    tls: tuple[Path, Path] | None = None,
) -> AsyncIterator[str]:
    """The gateway serving on `bind` (host:port, port 0 for any free one) until the block ends,
    over TLS with `tls` (certificate, key); yields its URL."""
    host, _, port = bind.rpartition(":")
    gateway = Gateway(sealed(client, gateway_signer), store, config, task_queue, home)
    app = build_app(gateway)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=int(port),
            log_level="warning",
            access_log=False,
            lifespan="off",
            # The hook answers within its own timeouts; a kept-alive connection saves Claude
            # Code a TCP handshake per tool call.
            timeout_keep_alive=30,
            ssl_certfile=str(tls[0]) if tls else None,
            ssl_keyfile=str(tls[1]) if tls else None,
        )
    )
    # Not uvicorn's signal handling (`serve` captures SIGINT and SIGTERM and raises them again
    # when it ends): the process that runs the gateway (`tether up`, a test) owns its signals.
    # The MCP endpoint's sessions live while the gateway serves (uvicorn runs no lifespan here).
    mcp_sessions = app.state.mcp.session_manager.run()
    await mcp_sessions.__aenter__()
    task = asyncio.create_task(server._serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it could not start (the port is taken, ...)
                raise RuntimeError(f"the gateway stopped while starting on {bind}")
            await asyncio.sleep(0.01)
        sockets = [s for srv in server.servers for s in srv.sockets]
        actual = sockets[0].getsockname()[1] if sockets else int(port)
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        url = f"{'https' if tls else 'http'}://{shown}:{actual}"
        log.info("gateway listening on %s", url)
        yield url
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            await mcp_sessions.__aexit__(None, None, None)


async def serve(
    settings: Settings, stop: asyncio.Event, on_ready: Callable[[str], None] | None = None
) -> None:
    """`tether gateway` (and `tether up`): serve until `stop` is set."""
    from tether.ops.stackfile import database_url, temporal_address

    config = load_config(settings.config_path)
    gateway_signer = signer(settings, "gateway")
    pool = await connect_pool(database_url(settings))
    try:
        await migrate(pool)
        client = await connect(temporal_address(settings), settings.namespace)
        async with listening(
            client,
            Store(pool),
            config,
            settings.task_queue,
            settings.home,
            settings.gateway_bind,
            gateway_signer,
            settings.gateway_tls,
        ) as url:
            if on_ready is not None:
                on_ready(url)
            else:
                print(f"Tether's gateway is listening on {url}", flush=True)
            await stop.wait()
    finally:
        await pool.close()
