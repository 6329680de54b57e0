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
from tether.limits import Raise, Settings, in_force, lines, scopes
from tether.limits import agent_scope as agent_scope  # where callers have always found them
from tether.limits import subject as subject
from tether.limits import team_scope as team_scope
from tether.trust.signing import verify


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


def verified_raise(row: dict[str, Any], public_key: str | None) -> Raise | None:
    """A stored order as a raise, if the founder's key signed exactly it."""
    verified = verified_limit(row, public_key)
    if verified is None:
        return None
    limit, order = verified
    return Raise(row["scope"], limit, order.by, order.reason)


def verified_raises(rows: list[dict[str, Any]], public_key: str | None) -> list[Raise]:
    """The stored orders the founder's key signed exactly, oldest first, as raises."""
    return [r for r in (verified_raise(row, public_key) for row in rows) if r is not None]


def limits(
    config: TetherConfig, agent: str, day: date, rows: list[dict[str, Any]]
) -> tuple[float | None, float | None, list[str]]:
    """(the agent's daily limit, the team's monthly limit, the raises in force) on `day`: the
    latest verified order per scope wins over tether.toml."""
    raises = verified_raises(rows, config.founder.key_text())
    return in_force(
        config.budget.daily_for(agent), config.budget.team_monthly_usd, agent, day, raises
    )


def settings_of(config: TetherConfig) -> Settings:
    """The hard budgets tether.toml sets, as plain data."""
    b = config.budget
    daily = {a.name: b.daily_for(a.name) for a in config.agents}
    return Settings({k: v for k, v in daily.items() if v is not None}, b.team_monthly_usd)


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
    day = (now or datetime.now(UTC)).date()
    settings = settings_of(config)
    rows = await store.budget_orders(scopes(settings, day))
    raises = verified_raises(rows, config.founder.key_text())
    spent = await store.spend_per_agent(day)
    _, month_spent = await store.budget_spend(None, day)
    return [BudgetLine(**line) for line in lines(settings, day, raises, spent, month_spent)]
