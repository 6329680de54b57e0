"""The read model's rows as plain data, for the founder's read commands (`tether task list`,
`tether inbox`): asyncpg and the standard library only, no pydantic and no Temporal SDK.

Importing pydantic and Tether's contracts costs a command about 230 ms before it asks anything
(measured: `python -c "import asyncpg"` 103 ms, with pydantic and one model 247 ms, with the
contracts 330 ms), which alone spends the cockpit's 300 ms. So these queries live here, and
`activities.store.Store` builds its models from the same rows with the same functions: one SQL
statement and one row-to-fields mapping for each, whichever side reads them.

The JSON forms are what `model_dump(mode="json")` of the contract gives (TaskView, InboxItem);
tests/test_cockpit_reads.py holds the two equal, field for field and in order.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from tether.errors import TetherError
from tether.names import inbox_command, inbox_see

# TaskView's fields in declaration order (what its JSON form holds), and TaskState's values.
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
TASK_STATES = ("open", "claimed", "verifying", "done", "blocked", "paused", "cancelled")

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


def task_line(task_id: str, state: str, assignee: str | None, title: str) -> str:
    """One row of `tether task list`."""
    return f"{task_id:<24} {state:<10} {assignee or '-':<14} {title}"


TASK_LIST_HEADER = task_line("ID", "STATE", "ASSIGNEE", "TITLE")


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
    """An inbox row as the inbox renderer reads it (the same attributes as InboxItem)."""

    def __init__(self, row: Any) -> None:
        fields = inbox_fields(row)
        self.id: int | None = fields["id"]
        self.kind: str = fields["kind"]
        self.title: str = fields["title"]
        self.detail: dict[str, Any] = fields["detail"] or {}
        self.action: str = fields["action"]
        self.created_at: datetime | None = fields["created_at"]
        self.cleared_at: datetime | None = fields["cleared_at"]

    @property
    def command(self) -> str:
        return inbox_command(self.action, self.id)

    @property
    def see(self) -> str:
        return inbox_see(self.detail)


def _json_value(value: Any) -> Any:
    """A column's value as pydantic writes it in JSON mode: datetimes in ISO 8601 with `Z` for
    UTC (every timestamptz asyncpg returns is in UTC)."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value
