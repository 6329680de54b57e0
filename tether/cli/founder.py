"""The founder's own things: `founder passkeys` lists the passkeys enrolled to act for the
founder (from the web cockpit, issue 30) and revokes one."""

from __future__ import annotations

import argparse
from typing import Any

from tether.cli.common import opened_store, print_json
from tether.config import Settings
from tether.errors import TetherError


async def cmd_passkeys(args: argparse.Namespace, settings: Settings) -> int:
    async with opened_store(settings) as store:
        if args.revoke:
            if not await store.revoke_passkey(args.revoke, args.by):
                raise TetherError(
                    f"no passkey named {args.revoke!r} is enrolled and not revoked; "
                    "`tether founder passkeys` lists them"
                )
            print(f"revoked passkey {args.revoke}: it can no longer act for the founder")
            return 0
        rows = await store.passkeys()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no passkeys enrolled")
        return 0
    for r in rows:
        state = (
            f"revoked {r['revoked_at']:%Y-%m-%d %H:%M} by {r['revoked_by']}"
            if r["revoked_at"]
            else "active"
        )
        print(f"{r['name']:<20} enrolled {r['enrolled_at']:%Y-%m-%d %H:%M}  {state}")
    return 0


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    founder = sub.add_parser("founder", help="the founder's passkeys: list them, revoke one")
    fsub = founder.add_subparsers(dest="founder_command", required=True, metavar="ACTION")
    p = fsub.add_parser(
        "passkeys",
        help="the passkeys enrolled to act for the founder; --revoke NAME ends one's authority",
    )
    p.add_argument("--revoke", metavar="NAME", help="revoke this passkey (its name or id)")
    p.add_argument("--by", default="founder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_passkeys)
