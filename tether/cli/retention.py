"""Keeping a year's record small: `tether prune` shows what is older than the retention age and
what keeps it (a dry run unless `--apply`); with `--apply` it rolls the tool-call log and the
cost ledger into one row per agent, task and day and removes what the audit chain holds."""

from __future__ import annotations

import argparse
from typing import Any

from tether.cli.common import opened_store, print_json
from tether.config import Settings, load_config
from tether.contracts import PruneReport

_KEPT_IN = {
    "tool_call_days": "summed into tool_call_days (a row per agent, task, day and tool)",
    "cost_days": "summed into cost_days (a row per agent, task and day)",
    "audit_chain": "the audit chain keeps what each was, who and when",
}
_TABLE = {"inbox": "inbox (cleared)"}


def render_prune(report: PruneReport, days: int, temporal_days: int) -> str:
    when = report.cutoff.date().isoformat()
    if report.applied:
        lines = [f"Pruned the record older than {when} ({days} days):"]
    else:
        lines = [
            f"Dry run: nothing was removed. Older than {when} ({days} days), `--apply` would "
            "remove:"
        ]
    for part in report.parts:
        name = _TABLE.get(part.table, part.table)
        gained = f", +{part.rollup_rows:,} rollup rows" if report.applied and part.rows else ""
        lines.append(f"  {name:<18} {part.rows:>12,} rows  {_KEPT_IN[part.kept_in]}{gained}")
    lines.append("Kept, never pruned (rows):")
    lines += [f"  {table:<18} {rows:>12,}" for table, rows in report.kept.items()]
    lines.append(
        f"Temporal keeps closed workflows {temporal_days} days ([retention] temporal_days); "
        "their record stays here. Tasks, sessions, deployments and the audit chain answer "
        "`tether task show` and the cockpit after any prune."
    )
    return "\n".join(lines)


async def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    from tether.store.retention import cutoff_for

    config = load_config(settings.config_path)
    days = args.older_than if args.older_than is not None else config.retention.ledger_days
    async with opened_store(settings) as store:
        report = await store.prune(cutoff_for(days), apply=args.apply, by=args.by)
    if args.json:
        print_json(report.model_dump(mode="json"))
    else:
        print(render_prune(report, days, config.retention.temporal_days))
    return 0


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if days < 7:
        raise argparse.ArgumentTypeError(
            f"{days} days is too recent: the governors and the budgets read the last week"
        )
    return days


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    p = sub.add_parser(
        "prune",
        help="show what the record holds past its retention age and what keeps it; --apply "
        "rolls it up and removes it",
    )
    p.add_argument(
        "--older-than",
        type=_days,
        metavar="DAYS",
        help="the age in days (default: [retention] ledger_days, 90)",
    )
    p.add_argument(
        "--apply",
        action="store_true",
        help="roll up and remove (without it, nothing is changed: a dry run)",
    )
    p.add_argument("--by", default="founder", help="who prunes (kept with the prune)")
    p.add_argument("--json", action="store_true", help="the report as JSON, for scripts")
    p.set_defaults(func=cmd_prune)
