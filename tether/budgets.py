"""Hard budgets: which limit is in force, from tether.toml and the founder's signed raises.

A raise is a FounderOrder with action `budget` whose subject names the scope, the period and
the new limit (`agent:coder:day:2026-12-05:40.00`, `team:month:2026-12:900.00`). It applies to
that period only, so an old order replayed later changes nothing. Orders are stored whole in
PostgreSQL and verified against the founder's public key every time a limit is read: a row
written by anyone else is ignored.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ValidationError

from tether.config import TetherConfig
from tether.contracts import FounderOrder
from tether.signing import verify


def agent_scope(agent: str, day: date) -> str:
    return f"agent:{agent}:day:{day.isoformat()}"


def team_scope(day: date) -> str:
    return f"team:month:{day:%Y-%m}"


def subject(scope: str, limit_usd: float) -> str:
    return f"{scope}:{limit_usd:.2f}"


def verified_limit(
    row: dict[str, Any], public_key: str | None
) -> tuple[float, FounderOrder] | None:
    """The limit a stored order sets, if the founder's key signed exactly it; else None."""
    try:
        order = FounderOrder.model_validate(row["order_json"])
    except ValidationError:
        return None
    limit = float(row["limit_usd"])
    if order.action != "budget" or order.subject != subject(row["scope"], limit):
        return None
    if verify(order, public_key) is not None:
        return None
    return limit, order


def limits(
    config: TetherConfig, agent: str, day: date, rows: list[dict[str, Any]]
) -> tuple[float | None, float | None, list[str]]:
    """(the agent's daily limit, the team's monthly limit, the raises in force) on `day`: the
    latest verified order per scope wins over tether.toml."""
    daily = config.budget.daily_for(agent)
    monthly = config.budget.team_monthly_usd
    raises: dict[str, str] = {}
    key = config.founder.key_text()
    for row in rows:
        found = verified_limit(row, key)
        if found is None:
            continue
        limit, order = found
        note = f" ({order.reason})" if order.reason else ""
        if row["scope"] == agent_scope(agent, day) and daily is not None:
            daily = limit
            raises["agent"] = f"{agent} daily ${limit:.2f} by {order.by}{note}"
        elif row["scope"] == team_scope(day) and monthly is not None:
            monthly = limit
            raises["team"] = f"team monthly ${limit:.2f} by {order.by}{note}"
    return daily, monthly, list(raises.values())
