"""Running Tether: `up`, `gateway`, `demo`, `init` and `keygen`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tether.cli.common import (
    colour_option,
    founder_client,
    open_store,
)
from tether.cli.taskfile import EXAMPLE_TASK
from tether.config import EXAMPLE_CONFIG, Settings
from tether.errors import TetherError
from tether.ops.runtime import stop_on_signals


async def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    target = Path(args.path) if args.path else settings.home / "tether.toml"
    if target.exists() and not args.force:
        raise TetherError(f"{target} already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(EXAMPLE_CONFIG)
    example_task = target.parent / "example-task.toml"
    if not example_task.exists():
        example_task.write_text(EXAMPLE_TASK)
    print(f"wrote {target} and {example_task}; edit them, then `tether up`")
    return 0


async def cmd_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from tether.trust.keys import write_key

    path, public = write_key(settings.home, args.role, force=args.force)
    if args.role == "founder":
        print(f"private key: {path} (mode 600; keep it on the founder's machine only)")
        print("add the public key to tether.toml and restart the workers:\n")
        print(f'[founder]\npublic_key = "{public}"')
    elif args.role == "gateway":
        print(f"private key: {path} (mode 600; only the gateway reads it: TETHER_GATEWAY_KEY)")
        print("add the public key to tether.toml and restart the workers:\n")
        print(f'[gateway]\npublic_key = "{public}"')
    else:
        print(f"private key: {path} (mode 600): give the same file to every worker process ")
        print("(TETHER_WORKER_KEY); workers derive its public half themselves")
    return 0


async def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from tether.cli.demo_run import demo_after_up
    from tether.ops.up import run_stack

    await run_stack(
        settings, stop_on_signals(), demo=args.demo, after_up=demo_after_up, verbose=args.verbose
    )
    return 0


async def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from tether.gateway.server import serve

    await serve(settings, stop_on_signals())
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from tether.cli.demo_run import run_demo
    from tether.cli.demo_runtime import find_claude
    from tether.cli.render import stdout_colour
    from tether.ops.stackfile import read_stack_file

    claude = find_claude(args.claude) if args.runtime == "claude-code" else None
    client = await founder_client(settings)
    store = await open_store(settings)
    stack = read_stack_file(settings.home) or {}
    try:
        result = await run_demo(
            client,
            store,
            settings.home,
            namespace=settings.namespace,
            web_ui=str(stack.get("web_ui") or f"http://localhost:{settings.ui_port}"),
            colour=stdout_colour(args.color),
            print_line=lambda line: print(line, flush=True),
            claude=claude,
        )
    finally:
        await store.pool.close()
    if not result.ok:
        print(
            f"{len(result.incidents) - result.caught} guardrail(s) did not act: see above",
            file=sys.stderr,
        )
        return 1
    return 0


def _verbose_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--verbose", action="store_true", help="libraries' INFO logs too (every HTTP request)"
    )


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    p = sub.add_parser("up", help="start Temporal, PostgreSQL and a worker on this machine")
    p.add_argument(
        "--demo",
        nargs="?",
        const="always",
        default="never",
        choices=("always", "first", "never"),
        help="once up, replay the seven incidents (`tether demo`) and keep serving the demo "
        "team: always, or only the first time (no demo under TETHER_HOME yet)",
    )
    _verbose_option(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser(
        "gateway",
        help="serve the agents' gateway (TETHER_GATEWAY_BIND; `tether up` runs one itself, as "
        "a process of its own)",
    )
    _verbose_option(p)
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser(
        "demo",
        help="replay the seven production incidents against the running stack; exit 1 if any "
        "guardrail did not act",
    )
    p.add_argument(
        "--runtime",
        choices=("scripted", "claude-code"),
        default="scripted",
        help="scripted: the agents are scripted clients of Tether (the default); claude-code: "
        "each agent is the real Claude Code CLI, run by Tether against a scripted model server "
        "on 127.0.0.1 (offline)",
    )
    p.add_argument("--claude", help="the Claude Code CLI (default: claude on PATH)")
    colour_option(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("init", help="write an example tether.toml and task file")
    p.add_argument("--path", help="where to write tether.toml (default: $TETHER_HOME/tether.toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "keygen",
        help="make an Ed25519 key pair: the founder's (default), the gateway's, the workers'",
    )
    p.add_argument(
        "--role",
        choices=["founder", "gateway", "worker"],
        default="founder",
        help="whose key pair to make (founder)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing key")
    p.set_defaults(func=cmd_keygen)
