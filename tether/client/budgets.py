"""Hard budgets, from the founder's side: raise one with a signed order, and read the spend
against each limit (what `tether budget show` and `tether status` print).

A raise is stored in PostgreSQL whole and verified against the founder's public key wherever a
limit is read (the sessions read it at start and after every ledger write); the sessions the
budget holds are then released with the founder's signed `release` order, each of which reads
the budget again and stays held if the new limit is still below what was spent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from tether import budgets
from tether.client.calls import Refused
from tether.client.sessions import release_session, session_view
from tether.config import TetherConfig
from tether.contracts import FounderOrder, Model, SessionState
from tether.errors import TetherError


class RaiseOutcome(Model):
    scope: str
    limit_usd: float
    # Per held session: "released", or why it is still held.
    sessions: dict[str, str]


async def raise_budget(
    client: Client,
    store: Any,
    config: TetherConfig,
    sign: Callable[[str, str], FounderOrder],
    limit_usd: float,
    agent: str | None = None,
    by: str = "founder",
    reason: str = "",
) -> RaiseOutcome:
    """Raise the agent's daily budget (today, UTC) or, without an agent, the team's monthly
    budget (this month) to `limit_usd`, with an order `sign(action, subject)` signs with the
    founder's key; then release the sessions that budget holds."""
    day = datetime.now(UTC).date()
    if agent is not None:
        if config.agent(agent) is None:
            raise TetherError(f"agent {agent} is not in tether.toml")
        if config.budget.daily_for(agent) is None:
            raise TetherError(
                f"{agent} has no daily budget to raise: set [budget] agent_daily_usd or "
                f"[budget.agents] {agent} in tether.toml"
            )
        scope = budgets.agent_scope(agent, day)
    else:
        if config.budget.team_monthly_usd is None:
            raise TetherError(
                "the team has no monthly budget to raise: set [budget] team_monthly_usd in "
                "tether.toml"
            )
        scope = budgets.team_scope(day)
    if limit_usd <= 0:
        raise TetherError(f"a budget must be above $0 (not {limit_usd})")
    order = sign("budget", budgets.subject(scope, limit_usd))
    row = {"scope": scope, "limit_usd": limit_usd, "order_json": order.model_dump(mode="json")}
    if budgets.verified_limit(row, config.founder.key_text()) is None:
        raise Refused(
            "the order does not verify with the founder's public key in tether.toml; sign it "
            "with the founder's key (--key, or $TETHER_HOME/founder.key)"
        )
    await store.add_budget_order(scope, limit_usd, row["order_json"])
    outcome = RaiseOutcome(scope=scope, limit_usd=limit_usd, sessions={})
    for name in await held_by_budget(client, config, agent):
        try:
            await release_session(client, name, by, reason, order=sign("release", name))
            outcome.sessions[name] = "released"
        except Refused as exc:
            outcome.sessions[name] = str(exc)
    return outcome


async def held_by_budget(client: Client, config: TetherConfig, agent: str | None) -> list[str]:
    """The agents whose open session a hard budget holds: `agent`'s, or any of the team's (the
    sessions a raise releases, each with its own signed order)."""
    held = []
    for name in [agent] if agent is not None else [a.name for a in config.agents]:
        view = await session_view(client, name)
        hold = view.governor.hold if view is not None else None
        if view is not None and view.state != SessionState.ENDED and hold and hold.kind == "budget":
            held.append(name)
    return held
