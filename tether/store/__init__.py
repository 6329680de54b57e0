"""PostgreSQL: the schema and every table Tether keeps (asyncpg lives here and nowhere else).

Tables: tasks and task_events (the task read model), sessions, inbox (what waits for the founder),
credential_status, handoffs (the knowledge base), deployments, service_state (what runs, the
cooldown), deploy_audit, cost_ledger, budgets and tool_calls, agent_tokens, refused_messages
and egress_refusals.

One module a part: `tasks`, `sessions`, `inbox`, `deployments`, `ledger`, `tokens`, `refusals`;
`migrations` (the schema), `connection` (the pool), `db` (the `Store` made of them all) and
`reads`, the read commands' queries as plain rows, which imports neither pydantic nor the
Temporal SDK. So this module stays light: `from tether.store import reads` costs only asyncpg,
and `Store`, `connect_pool` and `migrate` are imported when first asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.store.connection import connect_pool
    from tether.store.db import Store
    from tether.store.migrations import Migration, migrate

__all__ = ["Migration", "Store", "connect_pool", "migrate"]

_WHERE = {
    "Store": "tether.store.db",
    "connect_pool": "tether.store.connection",
    "migrate": "tether.store.migrations",
    "Migration": "tether.store.migrations",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(where), name)
