"""The read model's rows as plain data, for the founder's read commands (`tether task list`,
`tether inbox`, `tether status` and its budgets): asyncpg and the standard library only, no
pydantic and no Temporal SDK.

Importing pydantic and Tether's contracts costs a command about 230 ms before it asks anything
(measured: `python -c "import asyncpg"` 103 ms, with pydantic and one model 247 ms, with the
contracts 330 ms), which alone spends the cockpit's 300 ms. So these queries live here, and
`tether.store.Store` builds its models from the same rows with the same functions: one SQL
statement and one row-to-fields mapping for each, whichever side reads them.

The JSON forms are what `model_dump(mode="json")` of the contract gives (TaskView, InboxItem);
tests/test_cockpit.py holds the two equal, field for field and in order.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import asyncpg

from tether.errors import TetherError
from tether.names import inbox_command

# TaskView's fields in declaration order (what its JSON form holds).
TASK_VIEW_FIELDS = (
    "spec",
    "state",
    "assignee",
    "created_at",
    "updated_at",
    "hold_reason",
    "held_from",
    "held_by",
    "last_note",
    "last_evidence",
    "submissions",
    "seq",
)

# InboxItem's fields in declaration order.
INBOX_FIELDS = (
    "key",
    "kind",
    "subject",
    "title",
    "detail",
    "action",
    "created_at",
    "id",
    "cleared_at",
)


def cannot_connect(exc: BaseException) -> TetherError:
    return TetherError(
        f"cannot connect to PostgreSQL ({exc}); start it with `tether up` or set DATABASE_URL "
        "to a reachable server"
    )


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb columns as Python values, both ways."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection, for one read command (a pool costs more to open than the query)."""
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise cannot_connect(exc) from exc
    await init_connection(conn)
    return conn


# --- tasks ------------------------------------------------------------------------------------


async def task_rows(
    conn: asyncpg.Connection | asyncpg.Pool, state: str | None = None, assignee: str | None = None
) -> list[asyncpg.Record]:
    """The tasks, oldest first, optionally in one state or held by one agent."""
    return await conn.fetch(
        """SELECT * FROM tasks
           WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR assignee = $2)
           ORDER BY created_at, id""",
        state,
        assignee,
    )


def task_fields(row: Any) -> dict[str, Any]:
    """A `tasks` row as TaskView's fields (what TaskView.model_validate takes)."""
    return {name: row[name] for name in TASK_VIEW_FIELDS}


def task_json(row: Any) -> dict[str, Any]:
    """A `tasks` row in TaskView's JSON form, without building the model."""
    return {name: _json_value(value) for name, value in task_fields(row).items()}


# --- inbox ------------------------------------------------------------------------------------


async def inbox_rows(
    conn: asyncpg.Connection | asyncpg.Pool, include_cleared: bool = False
) -> list[asyncpg.Record]:
    """What waits for the founder, newest first; with the cleared items when asked."""
    return await conn.fetch(
        """SELECT id, key, kind, subject, title, detail, action, created_at, cleared_at
           FROM inbox WHERE $1 OR cleared_at IS NULL ORDER BY created_at DESC, id DESC""",
        include_cleared,
    )


def inbox_fields(row: Any) -> dict[str, Any]:
    """An `inbox` row as InboxItem's fields."""
    return {name: row[name] for name in INBOX_FIELDS}


def inbox_json(row: Any) -> dict[str, Any]:
    """An `inbox` row in InboxItem's JSON form, with the one command that acts on it (what
    `tether inbox --json` prints)."""
    item = {name: _json_value(value) for name, value in inbox_fields(row).items()}
    item["command"] = inbox_command(row["action"], row["id"])
    return item


class InboxRow:
    """An inbox row as the inbox renderer reads it (InboxItem's attributes)."""

    def __init__(self, row: Any) -> None:
        fields = inbox_fields(row)
        self.id: int | None = fields["id"]
        self.kind: str = fields["kind"]
        self.title: str = fields["title"]
        self.detail: dict[str, Any] = fields["detail"] or {}
        self.action: str = fields["action"]
        self.created_at: datetime | None = fields["created_at"]
        self.cleared_at: datetime | None = fields["cleared_at"]


def _json_value(value: Any) -> Any:
    """A column's value as pydantic writes it in JSON mode: datetimes in ISO 8601 with `Z` for
    UTC (every timestamptz asyncpg returns is in UTC)."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value


# --- the status -------------------------------------------------------------------------------

# Tasks the status lists: every task not closed, and those closed in the last week.
TASK_SUMMARY_FIELDS = (
    "id",
    "title",
    "state",
    "assignee",
    "held_by",
    "hold_reason",
    "artifact",
    "created_at",
    "updated_at",
)


async def task_summary_rows(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Every task not closed, and those closed in the last week: the brief's and the status's
    view of the work (TaskSummary's fields), oldest first."""
    return await conn.fetch(
        """SELECT id, title, state, assignee, held_by, hold_reason,
                  spec->'artifact' AS artifact, created_at, updated_at
           FROM tasks
           WHERE state NOT IN ('done', 'cancelled') OR updated_at > now() - interval '7 days'
           ORDER BY created_at, id"""
    )


async def latest_session_rows(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Each agent's most recent session, with the figures it keeps in its row."""
    return await conn.fetch(
        """SELECT DISTINCT ON (agent) agent, runtime, state, task_id, started_at, ended_at,
                  end_reason, blocker, pseudo_work, figures, figures_at, process_started,
                  isolation
           FROM sessions ORDER BY agent, started_at DESC"""
    )


async def status_rows(conn: asyncpg.Connection | asyncpg.Pool, since: datetime) -> dict[str, Any]:
    """Everything `tether status` shows but the budgets, from PostgreSQL alone: one round trip
    per table, on one connection (`since`: the oldest deployment shown)."""
    return {
        "sessions": await latest_session_rows(conn),
        "ended": await conn.fetch(
            """SELECT agent, count(*) FILTER (WHERE pseudo_work) AS flagged, count(*) AS ended
               FROM sessions WHERE state = 'ended' GROUP BY agent ORDER BY agent"""
        ),
        "task_counts": await conn.fetch("SELECT state, count(*) AS n FROM tasks GROUP BY state"),
        "tasks": await task_summary_rows(conn),
        "pseudo_work": await pseudo_work_rows(conn),
        "credentials": await conn.fetch(
            "SELECT name, ok, reason, expires_at FROM credential_status ORDER BY name"
        ),
        "deployments": await conn.fetch(
            """SELECT deployment_id, service, environment, state, ref, commit, agent, reason,
                      requested_at, queued, holds_lock
               FROM deployments WHERE requested_at > $1
               ORDER BY requested_at DESC, deployment_id LIMIT 50""",
            since,
        ),
        "running": await running_rows(conn),
        "inbox_open": await conn.fetchval("SELECT count(*) FROM inbox WHERE cleared_at IS NULL"),
        "refused_total": await conn.fetchval("SELECT count(*) FROM refused_messages"),
        "refused": await refusal_rows(conn, 5),
    }


async def pseudo_work_rows(
    conn: asyncpg.Connection | asyncpg.Pool, days: int = 7
) -> list[asyncpg.Record]:
    """Sessions flagged as pseudo-work in the last `days`, newest first."""
    return await conn.fetch(
        """SELECT agent, task_id, ended_at, end_reason, artifact_result
           FROM sessions
           WHERE pseudo_work AND ended_at > now() - make_interval(days => $1)
           ORDER BY ended_at DESC""",
        days,
    )


async def running_rows(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """What runs where: one row per service and environment with a finished deployment."""
    return await conn.fetch(
        """SELECT service, environment, deployed_commit AS commit, deployed_ref AS ref,
                  deployed_deployment AS deployment_id, deployed_at AS since
           FROM service_state WHERE deployed_commit IS NOT NULL
           ORDER BY service, environment = 'production', environment"""
    )


async def refusal_rows(conn: asyncpg.Connection | asyncpg.Pool, limit: int) -> list[asyncpg.Record]:
    """The most recent messages the workflows refused for who sent them."""
    return await conn.fetch(
        """SELECT at, workflow_id, handler, kind, reason, role, agent
           FROM refused_messages ORDER BY id DESC LIMIT $1""",
        limit,
    )


def jsonable(value: Any) -> Any:
    """`value` with every datetime in JSON mode, through dicts and lists (rows as dicts)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return _json_value(value)


# --- hard budgets -----------------------------------------------------------------------------


async def budget_order_rows(
    conn: asyncpg.Connection | asyncpg.Pool, scopes: list[str]
) -> list[dict[str, Any]]:
    """The orders stored for these scopes, oldest first (each is verified where it is used)."""
    rows = await conn.fetch(
        """SELECT id, scope, limit_usd, order_json, created_at FROM budget_orders
           WHERE scope = ANY($1::text[]) ORDER BY id""",
        scopes,
    )
    return [dict(r) for r in rows]


async def spend_per_agent(conn: asyncpg.Connection | asyncpg.Pool, day: date) -> dict[str, float]:
    """What each agent spent on `day` (UTC), from the ledger."""
    rows = await conn.fetch(
        "SELECT agent, SUM(usd) AS usd FROM spend_days WHERE day = $1 GROUP BY agent", day
    )
    return {r["agent"]: float(r["usd"]) for r in rows}


async def budget_spend(
    conn: asyncpg.Connection | asyncpg.Pool,
    agent: str | None,
    day: date,
    excluding_session: str = "",
) -> tuple[float, float]:
    """(the agent's spend on `day`, the whole team's in that day's month), leaving out one
    session (the one asking adds its own, live). No agent: the team's spend that day."""
    month = day.replace(day=1)
    row = await conn.fetchrow(
        """SELECT
               COALESCE(SUM(usd) FILTER (
                   WHERE day = $2 AND ($1::text IS NULL OR agent = $1)), 0) AS today,
               COALESCE(SUM(usd), 0) AS month
           FROM spend_days
           WHERE day >= $3 AND day < ($3 + interval '1 month') AND session_key <> $4""",
        agent,
        day,
        month,
        excluding_session,
    )
    assert row is not None
    return float(row["today"]), float(row["month"])
