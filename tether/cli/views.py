"""The founder's views on a terminal: `status` and `inbox` (`inbox done` acknowledges);
the reading itself is tether/cli/cockpit.py, which imports neither pydantic nor the Temporal SDK."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tether.cli import cockpit
from tether.cli.common import open_store
from tether.config import Settings


async def cmd_inbox(args: argparse.Namespace, settings: Settings) -> int:
    if args.inbox_command != "done":
        from tether.ops.stackfile import database_url

        return await cockpit.inbox(args, database_url(settings))
    store = await open_store(settings)
    try:
        cleared = await store.acknowledge(args.ids)
        if cleared:
            print("cleared " + ", ".join(f"#{i}" for i in cleared))
        refused = sorted(set(args.ids) - set(cleared))
        for item_id in refused:
            item = await store.inbox_item(item_id)
            if item is not None and item.cleared_at is None:
                why = f"it is cleared by acting on it: {item.command}"
            else:
                why = "not open (already cleared, or no such item); see `tether inbox --all`"
            print(f"#{item_id}: {why}", file=sys.stderr)
        return 3 if refused else 0
    finally:
        await store.pool.close()


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from tether.ops.stackfile import database_url

    return await cockpit.status(args, database_url(settings), settings.config_path, settings.home)


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    p = sub.add_parser("status", help=cockpit.STATUS_HELP)
    cockpit.add_status_arguments(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("inbox", help=cockpit.INBOX_HELP)
    cockpit.add_inbox_arguments(p)
    p.set_defaults(func=cmd_inbox, inbox_command=None)
    isub = p.add_subparsers(dest="inbox_command", metavar="ACTION")
    done = isub.add_parser("done", help="acknowledge notices: tether inbox done ID [ID ...]")
    done.add_argument("ids", type=int, nargs="+", metavar="ID", help="the items' ids")
