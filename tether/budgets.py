"""Hard budgets: which limit is in force, from tether.toml and the founder's signed raises.

A raise is a FounderOrder with action `budget` whose subject names the scope, the period and
the new limit (`agent:coder:day:2026-12-05:40.00`, `team:month:2026-12:900.00`). It applies to
that period only, so an old order replayed later changes nothing. Orders are stored whole in
PostgreSQL and verified against the founder's public key every time a limit is read: a row
written by anyone else is ignored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from tether.config import TetherConfig
from tether.contracts import FounderOrder, Model
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


class BudgetLine(Model):
    """One hard budget: whose, for which period, spent against the limit in force."""

    scope: str  # "agent" or "team"
    name: str  # the agent, or "team"
    period: str  # "2026-12-05" or "2026-12"
    spent_usd: float
    limit_usd: float
    raised: str | None = None


async def budget_lines(
    store: Any, config: TetherConfig, now: datetime | None = None
) -> list[BudgetLine]:
    """Spend today and this month (UTC) against each configured budget, from the ledger (an
    open session writes it every 50 reports or 60 s: the figures are at most that far behind)."""
    b = config.budget
    now = now or datetime.now(UTC)
    day = now.date()
    names = [a.name for a in config.agents if b.daily_for(a.name) is not None]
    scopes = [agent_scope(n, day) for n in names] + [team_scope(day)]
    rows = await store.budget_orders(scopes)
    spent = await store.spend_per_agent(day)
    _, month_spent = await store.budget_spend(None, day)
    lines = []
    for name in names:
        daily, _, raises = limits(config, name, day, rows)
        assert daily is not None
        raised = next((r for r in raises if r.startswith(f"{name} daily")), None)
        lines.append(
            BudgetLine(
                scope="agent",
                name=name,
                period=day.isoformat(),
                spent_usd=spent.get(name, 0.0),
                limit_usd=daily,
                raised=raised,
            )
        )
    if b.team_monthly_usd is not None:
        _, monthly, raises = limits(config, "", day, rows)
        assert monthly is not None
        lines.append(
            BudgetLine(
                scope="team",
                name="team",
                period=f"{day:%Y-%m}",
                spent_usd=month_spent,
                limit_usd=monthly,
                raised=next((r for r in raises if r.startswith("team monthly")), None),
            )
        )
    return lines
