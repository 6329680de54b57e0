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


# A page of `tether task list` unless told otherwise.
TASK_PAGE = 50


async def task_rows(
    conn: asyncpg.Connection | asyncpg.Pool,
    state: str | None = None,
    assignee: str | None = None,
    *,
    limit: int = TASK_PAGE,
    before: tuple[datetime, str] | None = None,
    since: datetime | None = None,
) -> list[asyncpg.Record]:
    """A page of tasks, newest first, optionally in one state or held by one agent: the
    `limit` created before the cursor `before` (a task's (created_at, id), from the page
    before), and not before `since`. Read through the index on (created_at, id), so a page
    costs the same in a year's record as in a week's."""
    return await conn.fetch(
        """SELECT * FROM tasks
           WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR assignee = $2)
             AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::text))
             AND ($5::timestamptz IS NULL OR created_at >= $5)
           ORDER BY created_at DESC, id DESC LIMIT $6""",
        state,
        assignee,
        before[0] if before else None,
        before[1] if before else "",
        since,
        limit,
    )


def task_cursor(row: Any) -> str:
    """The cursor of the page after `row` (`tether task list --before`)."""
    return f"{_json_value(row['created_at'])}/{row['id']}"


def parse_task_cursor(text: str) -> tuple[datetime, str]:
    when, sep, task_id = text.partition("/")
    try:
        if not sep or not task_id:
            raise ValueError
        at = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        raise TetherError(
            f"{text!r} is not a cursor of `tether task list`: pass the one its last line "
            "printed (--before <time>/<task id>)"
        ) from None
    return at, task_id


def task_fields(row: Any) -> dict[str, Any]:
    """A `tasks` row as TaskView's fields (what TaskView.model_validate takes)."""
    return {name: row[name] for name in TASK_VIEW_FIELDS}


def task_json(row: Any) -> dict[str, Any]:
    """A `tasks` row in TaskView's JSON form, without building the model."""
    return {name: _json_value(value) for name, value in task_fields(row).items()}


# TaskEvent's fields in declaration order.
TASK_EVENT_FIELDS = ("seq", "at", "actor", "kind", "from_state", "to_state", "detail")


async def task_record_json(conn: asyncpg.Connection, task_id: str) -> dict[str, Any] | None:
    """A task as `tether task show --json` prints it (TaskRecord's JSON form): its row, its
    events and its ledger (with what a prune summed); None when PostgreSQL has no such task."""
    row = await conn.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)
    if row is None:
        return None
    events = await conn.fetch("SELECT * FROM task_events WHERE task_id = $1 ORDER BY seq", task_id)
    ledger = await task_ledger_row(conn, task_id)
    return {
        "task": task_json(row),
        "events": [{k: _json_value(e[k]) for k in TASK_EVENT_FIELDS} for e in events],
        "ledger": {
            "usd": float(ledger["usd"]),
            "tool_calls": int(ledger["calls"]),
            "failed_tool_calls": int(ledger["failed"]),
        },
    }


async def task_ledger_row(conn: asyncpg.Connection | asyncpg.Pool, task_id: str) -> Any:
    """The task's spend and tool calls: the ledger's rows and the rollups of pruned ones (each
    read by its task index)."""
    return await conn.fetchrow(
        """SELECT
             (SELECT COALESCE(SUM(usd), 0) FROM cost_ledger WHERE task_id = $1)
             + (SELECT COALESCE(SUM(usd), 0) FROM cost_days WHERE task_id = $1) AS usd,
             (SELECT count(*) FROM tool_calls WHERE task_id = $1)
             + (SELECT COALESCE(SUM(calls), 0) FROM tool_call_days WHERE task_id = $1) AS calls,
             (SELECT count(*) FROM tool_calls WHERE task_id = $1 AND NOT ok)
             + (SELECT COALESCE(SUM(failed), 0) FROM tool_call_days WHERE task_id = $1)
               AS failed""",
        task_id,
    )


# --- inbox ------------------------------------------------------------------------------------


# A page of `tether inbox` unless told otherwise.
INBOX_PAGE = 100


async def inbox_rows(
    conn: asyncpg.Connection | asyncpg.Pool,
    include_cleared: bool = False,
    *,
    limit: int = INBOX_PAGE,
    before: int | None = None,
) -> list[asyncpg.Record]:
    """What waits for the founder, newest first; with the cleared items when asked. A page:
    the `limit` items before item `before` (the last id of the page before)."""
    return await conn.fetch(
        """SELECT id, key, kind, subject, title, detail, action, created_at, cleared_at
           FROM inbox WHERE ($1 OR cleared_at IS NULL) AND ($2::bigint IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3""",
        include_cleared,
        before,
        limit,
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
    view of the work (TaskSummary's fields), oldest first. Two index reads (the open tasks',
    and the recently updated), so a year of closed tasks costs nothing here."""
    return await conn.fetch(
        f"""SELECT {_SUMMARY_COLUMNS} FROM tasks
            WHERE state NOT IN ('done', 'cancelled')
            UNION
            SELECT {_SUMMARY_COLUMNS} FROM tasks
            WHERE updated_at > now() - interval '{RECENT_DAYS} days'
            ORDER BY created_at, id"""
    )


_SUMMARY_COLUMNS = """id, title, state, assignee, held_by, hold_reason,
                      spec->'artifact' AS artifact, created_at, updated_at"""
# The status's window for closed tasks.
RECENT_DAYS = 7
# The status's window for counts that would otherwise grow with the record: sessions ended and
# flagged as pseudo-work, messages refused.
COUNT_DAYS = 30


async def latest_session_rows(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Each agent's most recent session, with the figures it keeps in its row: one step down
    the (agent, started_at) key per agent, however many sessions each has had."""
    return await conn.fetch(
        """WITH RECURSIVE agents AS (
               (SELECT agent FROM sessions ORDER BY agent LIMIT 1)
               UNION ALL
               SELECT (SELECT s.agent FROM sessions s WHERE s.agent > a.agent
                       ORDER BY s.agent LIMIT 1)
               FROM agents a WHERE a.agent IS NOT NULL
           )
           SELECT latest.* FROM agents a CROSS JOIN LATERAL (
               SELECT agent, runtime, state, task_id, started_at, ended_at, end_reason, blocker,
                      pseudo_work, figures, figures_at, process_started, isolation
               FROM sessions s WHERE s.agent = a.agent ORDER BY started_at DESC LIMIT 1
           ) AS latest
           WHERE a.agent IS NOT NULL
           ORDER BY latest.agent"""
    )


async def status_rows(conn: asyncpg.Connection | asyncpg.Pool, since: datetime) -> dict[str, Any]:
    """Everything `tether status` shows but the budgets, from PostgreSQL alone: one round trip
    per table, on one connection (`since`: the oldest deployment shown)."""
    return {
        "sessions": await latest_session_rows(conn),
        "ended": await ended_counts(conn),
        "task_counts": await task_count_rows(conn),
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
        "refused_total": await conn.fetchval(
            f"""SELECT count(*) FROM refused_messages
                WHERE at > now() - interval '{COUNT_DAYS} days'"""
        ),
        "refused": await refusal_rows(conn, 5),
    }


async def ended_counts(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Per agent, the sessions that ended in the last COUNT_DAYS and how many of them were
    flagged as pseudo-work."""
    return await conn.fetch(
        f"""SELECT agent, count(*) FILTER (WHERE pseudo_work) AS flagged, count(*) AS ended
            FROM sessions WHERE ended_at > now() - interval '{COUNT_DAYS} days'
            GROUP BY agent ORDER BY agent"""
    )


async def task_count_rows(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Tasks per state: every open one, and those closed in the last RECENT_DAYS (what the
    status lists)."""
    return await conn.fetch(
        f"""SELECT state, count(*) AS n FROM (
                SELECT state FROM tasks WHERE state NOT IN ('done', 'cancelled')
                UNION ALL
                SELECT state FROM tasks
                WHERE updated_at > now() - interval '{RECENT_DAYS} days'
                  AND state IN ('done', 'cancelled')
            ) AS shown GROUP BY state"""
    )


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
