"""Hard budgets: `budget show`, `budget raise` (an order signed with the founder's key)."""

from __future__ import annotations

import argparse
from typing import Any

from tether.cli.common import (
    KEY_HELP,
    founder_client,
    founder_key,
    founder_order,
    open_store,
    print_json,
)
from tether.config import Settings, load_config
from tether.contracts import FounderOrder
from tether.errors import TetherError
from tether.trust.keys import with_founder_key


async def cmd_budget_raise(args: argparse.Namespace, settings: Settings) -> int:
    """A founder action: raise the agent's daily or the team's monthly budget, signed."""
    from tether.client.budgets import raise_budget
    from tether.trust.signing import PRIVATE_KEY_FILE

    if (args.agent is None) == (args.team_monthly is None):
        raise TetherError("say which budget: --agent NAME --daily USD, or --team-monthly USD")
    if args.agent is not None and args.daily is None:
        raise TetherError(f"say {args.agent}'s new daily budget: --daily USD")
    config = with_founder_key(settings, load_config(settings.config_path))
    if founder_key(args, settings) is None:
        raise TetherError(
            f"a budget is raised only with the founder's key: none at --key or "
            f"{settings.home / PRIVATE_KEY_FILE}"
        )

    def sign(action: str, subject: str) -> FounderOrder:
        signed = founder_order(args, settings, action, subject)
        assert signed is not None
        return signed

    store = await open_store(settings)
    try:
        outcome = await raise_budget(
            await founder_client(settings),
            store,
            config,
            sign,
            args.daily if args.agent is not None else args.team_monthly,
            agent=args.agent,
            by=args.by,
            reason=args.reason or "",
        )
    finally:
        await store.pool.close()
    print(f"budget {outcome.scope} raised to ${outcome.limit_usd:.2f} (signed by {args.by})")
    for agent, said in outcome.sessions.items():
        print(f"  {agent}: {said}")
    still = [a for a, said in outcome.sessions.items() if said != "released"]
    return 3 if still else 0


async def cmd_budget_show(args: argparse.Namespace, settings: Settings) -> int:
    from tether.budgets import budget_lines
    from tether.cli.render import render_budgets

    config = with_founder_key(settings, load_config(settings.config_path))
    store = await open_store(settings)
    try:
        lines = await budget_lines(store, config)
    finally:
        await store.pool.close()
    if args.json:
        print_json([line.model_dump(mode="json") for line in lines])
    else:
        print("\n".join(render_budgets([b.model_dump(mode="json") for b in lines])))
    return 0


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    budget = sub.add_parser("budget", help="hard budgets: show the spend, raise a limit (signed)")
    bsub = budget.add_subparsers(dest="budget_command", required=True, metavar="ACTION")
    p = bsub.add_parser("show", help="spend today and this month (UTC) against each budget")
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_budget_show)
    p = bsub.add_parser(
        "raise",
        help="raise an agent's daily budget (today) or the team's monthly budget (this month) "
        "with an order signed by the founder's key; the sessions it held are released",
    )
    p.add_argument("--agent", help="the agent whose daily budget is raised")
    p.add_argument("--daily", type=float, metavar="USD", help="its new daily limit for today")
    p.add_argument("--team-monthly", type=float, metavar="USD", help="the team's new limit")
    p.add_argument("--reason", default="", help="why (kept with the action)")
    p.add_argument("--by", default="founder", help="who acts (kept with the action)")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_budget_raise)
