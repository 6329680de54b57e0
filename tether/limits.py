"""Hard budgets' arithmetic on plain data: which limit is in force for an agent and for the
team, and the lines the founder reads. The standard library only: `tether status` computes its
budget lines with it without pydantic, and `tether.budgets` (config, signatures) with it too.

A raise is given here already verified: (scope, limit, by, reason) of each order the
founder's key signed, oldest first; the latest per scope wins over tether.toml.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple


class Raise(NamedTuple):
    """A verified order raising one scope's limit."""

    scope: str
    limit_usd: float
    by: str
    reason: str


class Settings(NamedTuple):
    """What tether.toml says of the hard budgets: each agent's daily limit (only agents that
    have one) and the team's monthly limit."""

    daily: Mapping[str, float]
    team_monthly_usd: float | None


def agent_scope(agent: str, day: date) -> str:
    return f"agent:{agent}:day:{day.isoformat()}"


def team_scope(day: date) -> str:
    return f"team:month:{day:%Y-%m}"


def subject(scope: str, limit_usd: float) -> str:
    return f"{scope}:{limit_usd:.2f}"


def in_force(
    daily: float | None, monthly: float | None, agent: str, day: date, raises: Sequence[Raise]
) -> tuple[float | None, float | None, list[str]]:
    """(the agent's daily limit, the team's monthly limit, the raises in force, in words) on
    `day`, from tether.toml's limits and the verified raises."""
    said: dict[str, str] = {}
    for r in raises:
        note = f" ({r.reason})" if r.reason else ""
        if r.scope == agent_scope(agent, day) and daily is not None:
            daily = r.limit_usd
            said["agent"] = f"{agent} daily ${r.limit_usd:.2f} by {r.by}{note}"
        elif r.scope == team_scope(day) and monthly is not None:
            monthly = r.limit_usd
            said["team"] = f"team monthly ${r.limit_usd:.2f} by {r.by}{note}"
    return daily, monthly, list(said.values())


def scopes(settings: Settings, day: date) -> list[str]:
    """The scopes whose raises the lines of `day` need."""
    return [agent_scope(n, day) for n in settings.daily] + [team_scope(day)]


def lines(
    settings: Settings,
    day: date,
    raises: Sequence[Raise],
    spent: Mapping[str, float],
    month_spent: float,
) -> list[dict[str, Any]]:
    """Spend today and this month (UTC) against each configured budget: BudgetLine's fields."""
    found = []
    for name, configured in settings.daily.items():
        daily, _, said = in_force(configured, None, name, day, raises)
        found.append(
            {
                "scope": "agent",
                "name": name,
                "period": day.isoformat(),
                "spent_usd": spent.get(name, 0.0),
                "limit_usd": daily,
                "raised": next((r for r in said if r.startswith(f"{name} daily")), None),
            }
        )
    if settings.team_monthly_usd is not None:
        _, monthly, said = in_force(None, settings.team_monthly_usd, "", day, raises)
        found.append(
            {
                "scope": "team",
                "name": "team",
                "period": f"{day:%Y-%m}",
                "spent_usd": month_spent,
                "limit_usd": monthly,
                "raised": next((r for r in said if r.startswith("team monthly")), None),
            }
        )
    return found
