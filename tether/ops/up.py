"""`tether up`: the whole stack on one machine, no Docker, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from urllib.parse import urlsplit

from temporalio.testing import WorkflowEnvironment

import worker
from tether.config import Settings, load_config
from tether.errors import TetherError
from tether.ops.runtime import die_with_parent, mask_url
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
    settings: Settings,
    stop: asyncio.Event,
    demo: str = "never",
    after_up: AfterUp | None = None,
    verbose: bool = False,
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
                "starting the Temporal dev server (state in %s, its log in %s)",
                settings.home / "temporal.db",
                settings.home / TEMPORAL_LOG,
            )
            temporal = await start_temporal_dev_server(
                port=settings.temporal_port,
                ui_port=settings.ui_port,
                http_port=settings.http_port,
                db_file=settings.home / "temporal.db",
                namespace=settings.namespace,
                log_file=settings.home / TEMPORAL_LOG,
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

        # The gateway runs as a process of its own (`tether gateway`), as on a cluster: its
        # event loop answers the agents' hooks without sharing an interpreter with the
        # worker's workflow tasks (scripts/bench_gateway_load.py --split measures the
        # difference). It is given the database's password by file, never in its environment.
        env = {
            **os.environ,
            "TETHER_HOME": str(settings.home),
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_NAMESPACE": settings.namespace,
            "TETHER_TASK_QUEUE": settings.task_queue,
            "TETHER_GATEWAY_BIND": settings.gateway_bind,
        }
        if settings.config_path is not None:
            env["TETHER_CONFIG"] = str(settings.config_path)
        if postgres is not None:
            env["DATABASE_URL"] = postgres.public_url
            env["TETHER_DATABASE_PASSWORD_FILE"] = str(postgres.password_file)
        gateway = await gateway_process(env, verbose)
        gateway_url = gateway.url
        watch = asyncio.create_task(gateway.ended(stop))
        try:
            await worker.serve(running, stop, on_ready=ready)
        finally:
            stop.set()
            watch.cancel()
            await gateway.stop()
    finally:
        stack_file(settings.home).unlink(missing_ok=True)
        if temporal is not None:
            await temporal.shutdown()
        if postgres is not None:
            await asyncio.to_thread(postgres.stop)
        if temporal is not None or postgres is not None:
            log.info("stopped")


# The dev server's own output (its banner, its warnings), under TETHER_HOME.
TEMPORAL_LOG = "temporal.log"

# How long the gateway has to start, and to stop once told to.
GATEWAY_START = 60.0
GATEWAY_STOP = 20.0


@dataclass
class GatewayProcess:
    proc: asyncio.subprocess.Process
    url: str

    async def ended(self, stop: asyncio.Event) -> None:
        """Stop the stack if the gateway exits on its own: the agents would have no door."""
        code = await self.proc.wait()
        if not stop.is_set():
            log.error("the gateway exited (status %s): stopping the stack", code)
            stop.set()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), GATEWAY_STOP)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def gateway_process(env: dict[str, str], verbose: bool) -> GatewayProcess:
    """`tether gateway` as a child of this process (killed with it), once it listens."""
    argv = [sys.executable, "-m", "tether", "gateway", *(["--verbose"] if verbose else [])]
    # Its own session: a Ctrl-C on the terminal reaches `tether up`, which stops it in turn.
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=die_with_parent,
        start_new_session=True,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), GATEWAY_START)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise TetherError(f"the gateway did not start within {GATEWAY_START:g} s") from None
    said = line.decode(errors="replace").strip()
    if " listening on " not in said:
        await proc.wait()
        raise TetherError(f"the gateway did not start (status {proc.returncode}); see above")
    return GatewayProcess(proc, said.rsplit(" ", 1)[1])
