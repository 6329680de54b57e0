"""The `tether` command: the founder's and the agents' interface. Each noun's commands, with their
parsers beside their handlers, are a module of this package; this puts them on one parser.

Exit codes: 0 success; 1 not done (a check failed, a session ended without its deliverable);
2 bad input or an unreachable server; 3 refused or blocked by a workflow (nothing changed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

from tether.cli import (
    agents,
    audit,
    budgets,
    deployments,
    founder,
    retention,
    sessions,
    stack,
    tasks,
    views,
)
from tether.config import Settings
from tether.ops.runtime import (
    run_and_exit,
    setup_command_logging,
    setup_logging,
    setup_metrics,
    setup_tracing,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tether", description="Structural guardrails for teams of AI agents."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for noun in (
        stack,
        tasks,
        agents,
        sessions,
        budgets,
        views,
        deployments,
        audit,
        founder,
        retention,
    ):
        noun.register(sub)
    sub.add_parser(
        "hook", help="answer an agent runtime's hook: tether hook claude-code EVENT --agent NAME"
    )
    return parser


async def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    role = {"up": "worker", "gateway": "gateway"}.get(args.command, "cli")
    setup_tracing(settings.otel_exporter, role=role)
    if args.command == "up":
        # `tether up` runs the worker in this process: it serves the worker's metrics.
        setup_metrics(settings.metrics_bind)
    func: Callable[[argparse.Namespace, Settings], Awaitable[int]] = args.func
    return await func(args, settings)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command in ("up", "gateway"):
        setup_logging(verbose=args.verbose)
    else:
        setup_command_logging()
    run_and_exit(_run(args))


if __name__ == "__main__":
    main(sys.argv[1:])
