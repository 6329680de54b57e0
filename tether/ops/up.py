"""`tether up`: the whole stack on one machine, no Docker, until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from urllib.parse import urlsplit

from temporalio.testing import WorkflowEnvironment

import worker
from tether.config import Settings, load_config
from tether.gateway import server as gateway_server
from tether.ops.runtime import mask_url
from tether.ops.stack import (
    EmbeddedPostgres,
    require_free_port,
    start_temporal_dev_server,
    write_stack_file,
)
from tether.ops.stackfile import stack_file
from tether.trust.keys import ensure_keys

log = logging.getLogger("tether.up")


# `tether up --demo`: what runs once the stack is up (the CLI passes the demo; ops does not
# import the CLI).
AfterUp = Callable[..., Coroutine[None, None, None]]


def sandbox_line() -> str:
    """Whether this host can sandbox the agents it runs (issue 28), in a line."""
    from tether.ops.sandbox import host_refusal

    why = host_refusal()
    if why is None:
        return "agents run sandboxed (srt: their worktree and home, the gateway, their hosts)"
    return f'UNAVAILABLE: {why}; only agents with isolation = "none" will run'


async def run_stack(
    settings: Settings, stop: asyncio.Event, demo: str = "never", after_up: AfterUp | None = None
) -> None:
    load_config(settings.config_path)  # a bad tether.toml stops us before anything starts
    settings.home.mkdir(parents=True, exist_ok=True)
    made = ensure_keys(settings)
    if made:
        log.info("made keys %s under %s (kept there, mode 600)", ", ".join(made), settings.home)

    temporal: WorkflowEnvironment | None = None
    postgres: EmbeddedPostgres | None = None
    try:
        gateway_port = int(settings.gateway_bind.rpartition(":")[2])
        require_free_port(
            gateway_port,
            "Tether's gateway",
            "another `tether up` or gateway may be running: stop it, or choose another port "
            "with TETHER_GATEWAY_BIND",
        )
        if settings.temporal_address is None:
            hint = (
                "another Temporal server (or `tether up`) may be running: stop it, set "
                "TEMPORAL_ADDRESS to use it, or choose other ports with TETHER_TEMPORAL_PORT, "
                "TETHER_UI_PORT and TETHER_HTTP_PORT"
            )
            require_free_port(settings.temporal_port, "Temporal frontend", hint)
            require_free_port(settings.ui_port, "Temporal Web UI", hint)
            require_free_port(settings.http_port, "Temporal HTTP API", hint)
            log.info(
                "starting the Temporal dev server (state in %s)", settings.home / "temporal.db"
            )
            temporal = await start_temporal_dev_server(
                port=settings.temporal_port,
                ui_port=settings.ui_port,
                http_port=settings.http_port,
                db_file=settings.home / "temporal.db",
                namespace=settings.namespace,
            )
            address = f"localhost:{settings.temporal_port}"
            ui = f"http://localhost:{settings.ui_port}"
            http_api = f"http://127.0.0.1:{settings.http_port}"
        else:
            address, ui = settings.temporal_address, "(the Web UI of your Temporal cluster)"
            http_api = os.environ.get("TETHER_TEMPORAL_HTTP", "")

        if settings.database_url is None:
            postgres = EmbeddedPostgres(settings.home / "postgres", port=settings.postgres_port)
            log.info("starting PostgreSQL (data in %s)", postgres.data_dir)
            await asyncio.to_thread(postgres.start)
            db_url = postgres.url
        else:
            db_url = settings.database_url

        running = settings.model_copy(update={"temporal_address": address, "database_url": db_url})
        background: set[asyncio.Task[None]] = set()

        def ready() -> None:
            write_stack_file(
                settings.home,
                {
                    "pid": os.getpid(),
                    "temporal_address": address,
                    "namespace": settings.namespace,
                    "task_queue": settings.task_queue,
                    "web_ui": ui,
                    "temporal_http": http_api,
                    # The agents' door: their hooks and commands reach Tether only here.
                    "gateway_url": gateway_url,
                    # A URL with a password came from DATABASE_URL, which the CLI reads itself;
                    # it is not copied into a file. The embedded server's password stays in its
                    # own file (mode 600), which this one names.
                    **(
                        {
                            "database_url": postgres.public_url,
                            "database_password_file": str(postgres.password_file),
                        }
                        if postgres is not None
                        else {"database_url": "" if urlsplit(db_url).password else db_url}
                    ),
                },
            )
            print(
                "Tether is up.\n"
                f"  Temporal:   {address} (namespace {settings.namespace})\n"
                f"  Web UI:     {ui}\n"
                f"  Gateway:    {gateway_url} (the agents' hooks and commands)\n"
                f"  PostgreSQL: {mask_url(db_url)}\n"
                f"  Worker:     task queue {settings.task_queue}\n"
                f"  Sandbox:    {sandbox_line()}\n"
                f"  Home:       {settings.home}\n"
                "Press Ctrl-C to stop.",
                flush=True,
            )
            if demo == "first" and (settings.home / "demo").exists():
                print(
                    "Replay the seven incidents again with: tether demo "
                    "(`source .venv/bin/activate` puts tether on the PATH)",
                    flush=True,
                )
            elif demo != "never" and after_up is not None:
                demo_task = asyncio.get_running_loop().create_task(
                    after_up(running, namespace=settings.namespace, web_ui=ui, stop=stop)
                )
                background.add(demo_task)
                demo_task.add_done_callback(background.discard)

        gateway_ready = asyncio.Event()
        gateway_url = settings.gateway_address

        def gateway_up(url: str) -> None:
            nonlocal gateway_url
            gateway_url = url
            gateway_ready.set()

        gateway = asyncio.create_task(gateway_server.serve(running, stop, on_ready=gateway_up))
        ready_or_failed = asyncio.create_task(gateway_ready.wait())
        await asyncio.wait({gateway, ready_or_failed}, return_when=asyncio.FIRST_COMPLETED)
        if gateway.done():
            ready_or_failed.cancel()
            gateway.result()  # why it could not start
            raise RuntimeError("the gateway stopped while starting")
        try:
            await worker.serve(running, stop, on_ready=ready)
        finally:
            stop.set()
            await gateway
    finally:
        stack_file(settings.home).unlink(missing_ok=True)
        if temporal is not None:
            await temporal.shutdown()
        if postgres is not None:
            await asyncio.to_thread(postgres.stop)
        if temporal is not None or postgres is not None:
            log.info("stopped")
