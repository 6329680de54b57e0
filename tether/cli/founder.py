"""The founder's own things: `founder passkey add` prints a one-time link that registers a
passkey in a browser and enrolls it with the founder's key; `founder passkeys` lists the
passkeys enrolled to act for the founder (from the web cockpit, issue 30) and revokes one."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from tether.cli.common import KEY_HELP, opened_store, print_json
from tether.config import Settings
from tether.errors import TetherError


async def cmd_passkeys(args: argparse.Namespace, settings: Settings) -> int:
    async with opened_store(settings) as store:
        rows = await store.passkeys()
        if args.revoke:
            from tether.cli.common import api, founder_client
            from tether.contracts import PasskeyRevocation

            named = [
                r
                for r in rows
                if args.revoke in (r["name"], r["credential_id"]) and r["revoked_at"] is None
            ]
            if not named:
                raise TetherError(
                    f"no passkey named {args.revoke!r} is enrolled and not revoked; "
                    "`tether founder passkeys` lists them"
                )
            client = await founder_client(settings)
            for r in named:
                # In Temporal first, where no database user can undo it; then the row.
                revocation = PasskeyRevocation(
                    credential_id=r["credential_id"], name=r["name"], by=args.by
                )
                await api.revoke_passkey(client, settings.task_queue, revocation)
            await store.revoke_passkey(args.revoke, args.by)
            print(f"revoked passkey {args.revoke}: it can no longer act for the founder")
            return 0
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


async def cmd_passkey_add(args: argparse.Namespace, settings: Settings) -> int:
    """A founder action: the link registers the passkey; this command, which holds the
    founder's key, enrolls it (signs it) once the registration lands."""
    from datetime import UTC, datetime, timedelta

    from tether.cli.common import founder_key
    from tether.client.agent import gateway_url
    from tether.contracts import PasskeyEnrollment
    from tether.trust.signing import load_private, sign

    path = founder_key(args, settings)
    if path is None:
        raise TetherError(
            "a passkey is enrolled only with the founder's key: none at --key or "
            f"{settings.home / 'founder.key'}"
        )
    key = load_private(path)
    ttl = timedelta(minutes=args.minutes)
    async with opened_store(settings) as store:
        token = await store.invite_passkey(args.name, ttl)
        link = f"{args.gateway or gateway_url(settings)}/founder/register/{token}"
        print(f"open this link on the device to enroll, within {args.minutes:g} minutes:")
        print(link, flush=True)
        deadline = asyncio.get_running_loop().time() + ttl.total_seconds()
        while (registered := await store.invite_result(token)) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise TetherError("the link expired before a passkey was registered; run it again")
            await asyncio.sleep(0.5)
        enrollment = sign(
            PasskeyEnrollment(**registered, name=args.name, enrolled_at=datetime.now(UTC)), key
        )
        await store.add_passkey(enrollment)
    print(f"enrolled passkey {args.name} for {enrollment.origin}: it can act for the founder")
    return 0


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    founder = sub.add_parser(
        "founder", help="the founder's passkeys: enroll one, list them, revoke one"
    )
    fsub = founder.add_subparsers(dest="founder_command", required=True, metavar="ACTION")
    p = fsub.add_parser(
        "passkey",
        help="enroll a passkey: prints a one-time link to open on the device (a founder action)",
    )
    psub = p.add_subparsers(dest="passkey_command", required=True, metavar="ACTION")
    p = psub.add_parser("add", help="print a one-time link that registers a passkey; enroll it")
    p.add_argument("--name", required=True, help="what to call the device (phone, laptop)")
    p.add_argument("--minutes", type=float, default=15, help="how long the link is valid")
    p.add_argument("--gateway", help="the gateway's URL the link points at (default: the stack's)")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_passkey_add)
    p = fsub.add_parser(
        "passkeys",
        help="the passkeys enrolled to act for the founder; --revoke NAME ends one's authority",
    )
    p.add_argument("--revoke", metavar="NAME", help="revoke this passkey (its name or id)")
    p.add_argument("--by", default="founder", help="who acts (kept with the action)")
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_passkeys)
