"""Running the demo: `tether demo` and `tether up --demo`, with the scripted agents of
tether/cli/demo.py, or (`--runtime claude-code`) each agent a real Claude Code CLI run by
Tether (tether/cli/demo_runtime.py). Apart from both, so that neither imports the other's
caller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client

from tether.cli.demo import (
    INCIDENTS,
    DemoResult,
    Incident,
    build_world,
    render_incident,
    run_incidents,
    web_ui_links,
)
from tether.config import Settings


async def run_demo(
    client: Client,
    store: Any,
    home: Path,
    *,
    namespace: str,
    web_ui: str,
    print_line: Callable[[str], None] = print,
    colour: bool = False,
    linger: asyncio.Event | None = None,
    tag: str | None = None,
    claude: Path | None = None,
) -> DemoResult:
    """Build the world, run the demo team's worker, replay the incidents. With `linger`, the
    worker keeps serving the demo's workflows until it is set (`tether up --demo`). With
    `claude`, each agent is that Claude Code CLI, run by Tether (tether/cli/demo_runtime.py)."""
    import worker as tether_worker
    from tether.cli.demo_runtime import RuntimeDemo, with_gateway

    world, notes = build_world(home, tag)
    for note in notes:
        print_line(f"note: {note}")
    # The demo acts as the founder: what it sends is sealed with the founder's key.
    from tether.client.connection import sealed
    from tether.trust.seals import Signer
    from tether.trust.signing import PRIVATE_KEY_FILE, load_private

    client = sealed(client, Signer("founder", load_private(home / PRIVATE_KEY_FILE)))
    team = ", ".join(world.names.values())
    print_line(f"Tether demo {world.tag}: seven production incidents, replayed against the stack")
    print_line(f"  team {team}; service {world.service}; workspace {world.folder}")
    if claude is not None:
        print_line(f"  each agent is Claude Code ({claude}), run by Tether, offline")
    print_line("")

    async def replay(gateway_url: str | None) -> DemoResult:
        settings = None
        if gateway_url is not None:
            # The agents' worktrees, and the gateway their hooks report to.
            settings = Settings(home=world.folder / "tether-home", gateway_url=gateway_url)
        async with tether_worker.build_worker(
            client, world.task_queue, store, world.config, settings=settings
        ):

            def show(inc: Incident) -> None:
                if inc.number == len(INCIDENTS) + 1:
                    print_line("And what the loops cost:")
                print_line(render_incident(inc, colour))

            demo = RuntimeDemo(client, world, store, claude) if claude is not None else None
            incidents = await run_incidents(client, world, show, demo)
            result = DemoResult(world.tag, world.folder, incidents, web_ui)
            print_line("")
            print_line(
                f"{result.caught} of {len(result.seven)} incidents caught by their guardrail"
                + (
                    "."
                    if all(i.caught for i in incidents[len(INCIDENTS) :])
                    else "; the cost governor did NOT pause the runaway task."
                )
            )
            print_line("See them: tether status · tether inbox · the Web UI:")
            for link in web_ui_links(web_ui, namespace, world):
                print_line(f"  {link}")
            if linger is not None:
                print_line(
                    "The stack stays up, serving the demo team's workflows: Ctrl-C stops it."
                )
                await linger.wait()
        return result

    try:
        if claude is not None:
            result: DemoResult = await with_gateway(client, store, world, replay)
        else:
            result = await replay(None)
    finally:
        world.api.stop()
    return result


async def demo_after_up(
    settings: Settings, *, namespace: str, web_ui: str, stop: asyncio.Event
) -> None:
    """`tether up --demo`: replay the incidents once the stack is up, then keep the demo team's
    worker serving its workflows (so the founder can act on them) until the stack stops."""
    from tether.client import connect
    from tether.ops.stackfile import database_url, temporal_address
    from tether.store import Store, connect_pool

    client = await connect(temporal_address(settings), settings.namespace)
    pool = await connect_pool(database_url(settings))
    try:
        print("", flush=True)
        await run_demo(
            client,
            Store(pool),
            settings.home,
            namespace=namespace,
            web_ui=web_ui,
            print_line=lambda line: print(line, flush=True),
            linger=stop,
        )
    except Exception:
        logging.getLogger("tether.up").exception("the demo could not run; the stack stays up")
    finally:
        await pool.close()
