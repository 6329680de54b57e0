"""The founder's read commands that answer from PostgreSQL alone: `tether task list`,
`tether inbox` and `tether status`. They import neither pydantic nor the Temporal SDK
(`tether.entry` sends them here before the rest of the CLI is imported), so they answer in a
fraction of the time the full CLI takes to start (scripts/bench_cockpit.py).

There is one implementation: the full CLI's parser takes these commands' arguments from here and
runs these same functions, so a command behaves the same however it was reached.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether import limits
from tether import status as report
from tether.errors import TetherError
from tether.ops.stackfile import config_path_from_env, database_url_from, home_from_env

# TaskState's values (a test holds them equal). The queries (tether.store.reads, asyncpg) are
# imported by the commands that run them: every other command passes through this module.
TASK_STATES = ("open", "claimed", "verifying", "done", "blocked", "paused", "cancelled")


def colour_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour on a terminal, plain when piped (auto); NO_COLOR is honoured",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 10000")
    return value


def _since(text: str) -> datetime:
    """A date or time (ISO 8601, UTC unless it says), or an age: `30d`, `12h`."""
    from datetime import timedelta

    units = {"d": "days", "h": "hours"}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a date (2026-11-01), a time (2026-11-01T09:00) nor an age "
            "(30d, 12h)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def add_task_list_arguments(p: argparse.ArgumentParser) -> None:
    from tether.store.reads import TASK_PAGE

    p.add_argument("--state", choices=TASK_STATES, help="only tasks in this state")
    p.add_argument("--agent", help="only tasks assigned to this agent")
    p.add_argument(
        "--since",
        type=_since,
        metavar="WHEN",
        help="only tasks created since WHEN: a date, a time or an age (30d, 12h)",
    )
    p.add_argument(
        "--limit",
        type=_positive,
        default=TASK_PAGE,
        metavar="N",
        help=f"at most N tasks, newest first (default {TASK_PAGE})",
    )
    p.add_argument(
        "--before",
        metavar="CURSOR",
        help="the next page: the cursor the page before ended with",
    )
    p.add_argument("--json", action="store_true", help="the tasks as JSON, for scripts")


def add_inbox_arguments(p: argparse.ArgumentParser) -> None:
    from tether.store.reads import INBOX_PAGE

    p.add_argument("--all", action="store_true", help="include cleared items")
    p.add_argument(
        "--limit",
        type=_positive,
        default=INBOX_PAGE,
        metavar="N",
        help=f"at most N items, newest first (default {INBOX_PAGE})",
    )
    p.add_argument(
        "--before", type=int, metavar="ID", help="the next page: items older than item ID"
    )
    p.add_argument("--json", action="store_true", help="the items as JSON, for scripts")
    colour_option(p)


def add_status_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="the whole report as JSON, for scripts")
    colour_option(p)


TASK_LIST_HELP = "list tasks, newest first, a page at a time"
STATUS_HELP = "agents, tasks, deployments, blockers at a glance"
INBOX_HELP = "what waits for the founder, newest first, each with its one command"


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def render_task(task: dict[str, Any]) -> str:
    """A task (TaskView's JSON form) as `tether task create|claim|show` print it."""
    spec = task["spec"]
    lines = [f"task {spec['id']}: {spec['title']}", f"  state: {task['state']}"]
    if task["assignee"]:
        lines.append(f"  assignee: {task['assignee']}")
    if task["hold_reason"]:
        lines.append(f"  reason: {task['hold_reason']}")
    if spec.get("artifact"):
        art = {k: v for k, v in spec["artifact"].items() if v is not None}
        lines.append("  artifact: " + ", ".join(f"{k}={v}" for k, v in art.items()))
    lines.append(f"  submissions: {task['submissions']}")
    evidence = {e["index"]: e for e in task["last_evidence"]}
    lines.append("  checks:")
    for i, check in enumerate(spec["checks"]):
        ev = evidence.get(i)
        status = f"{'PASS' if ev['passed'] else 'FAIL'}  {ev['summary']}" if ev else "not run yet"
        label = check.get("name") or f"{check.get('kind', 'check')}#{i + 1}"
        lines.append(f"    [{check['kind']}] {label}: {status}")
    return "\n".join(lines)


def render_task_record(record: dict[str, Any]) -> str:
    """A task with its ledger and history (TaskRecord's JSON form), as `tether task show`
    prints it."""
    task = record["task"]
    lines = [render_task(task)]
    if task["last_note"]:
        lines.append(f"  last note from the agent (not evidence): {task['last_note']}")
    if record.get("ledger") is not None:
        led = record["ledger"]
        lines.append(
            f"  spent ${led['usd']:.2f} over {led['tool_calls']} tool calls "
            f"({led['failed_tool_calls']} failed)"
        )
    lines.append("  history:")
    for e in record["events"]:
        moved = (
            f"{e['from_state']} -> {e['to_state']}" if e["from_state"] else f"-> {e['to_state']}"
        )
        extra = f"  {json.dumps(e['detail'])}" if e["detail"] else ""
        at = datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
        lines.append(f"    {at:%Y-%m-%d %H:%M:%S} {e['actor']:<10} {e['kind']:<20} {moved}{extra}")
    return "\n".join(lines)


# A closed task's record is final in PostgreSQL: `task show` answers it here. Any other task
# may have transitions its workflow has not written yet: the full CLI asks the workflow.
CLOSED_STATES = ("done", "cancelled")


async def closed_task(task_id: str, dsn: str) -> dict[str, Any] | None:
    """A closed task's record (TaskRecord's JSON form), or None when this module cannot give
    all of it (no such task here, a task still open, PostgreSQL out of reach)."""
    from tether.store import reads

    try:
        conn = await reads.connect(dsn)
    except TetherError:
        return None
    try:
        record = await reads.task_record_json(conn, task_id)
    finally:
        await conn.close()
    if record is None or record["task"]["state"] not in CLOSED_STATES:
        return None
    return record


def task_line(task_id: str, state: str, assignee: str | None, title: str) -> str:
    """One row of `tether task list`."""
    return f"{task_id:<24} {state:<10} {assignee or '-':<14} {title}"


async def task_list(args: argparse.Namespace, dsn: str) -> int:
    from tether.store import reads

    before = reads.parse_task_cursor(args.before) if args.before else None
    conn = await reads.connect(dsn)
    try:
        rows = await reads.task_rows(
            conn, args.state, args.agent, limit=args.limit + 1, before=before, since=args.since
        )
    finally:
        await conn.close()
    more = len(rows) > args.limit
    rows = rows[: args.limit]
    # The next page's command: on stderr under --json, so the JSON stays a list.
    next_page = f"more: tether task list --before {reads.task_cursor(rows[-1])}" if more else ""
    if args.json:
        print_json([reads.task_json(r) for r in rows])
        if next_page:
            print(next_page, file=sys.stderr)
        return 0
    if not rows:
        print("no tasks")
        return 0
    lines = [task_line("ID", "STATE", "ASSIGNEE", "TITLE")]
    lines += [task_line(r["id"], r["state"], r["assignee"], r["title"]) for r in rows]
    if next_page:
        lines.append(f"{len(rows)} shown, newest first; {next_page}")
    print("\n".join(lines))
    return 0


async def inbox(args: argparse.Namespace, dsn: str) -> int:
    from tether.cli.render import render_inbox, stdout_colour
    from tether.store import reads

    conn = await reads.connect(dsn)
    try:
        rows = await reads.inbox_rows(
            conn, include_cleared=args.all, limit=args.limit + 1, before=args.before
        )
    finally:
        await conn.close()
    more = len(rows) > args.limit
    rows = rows[: args.limit]
    flag = " --all" if args.all else ""
    next_page = f"more: tether inbox{flag} --before {rows[-1]['id']}" if more else ""
    if args.json:
        print_json([reads.inbox_json(r) for r in rows])
        if next_page:
            print(next_page, file=sys.stderr)
    else:
        print(render_inbox([reads.InboxRow(r) for r in rows], stdout_colour(args.color)))
        if next_page:
            print(f"{len(rows)} shown, newest first; {next_page}")
    return 0


async def status(args: argparse.Namespace, dsn: str, config_path: Path | None, home: Path) -> int:
    from tether.cli.render import render_status, stdout_colour
    from tether.store import reads

    now = datetime.now(UTC)
    conn = await reads.connect(dsn)
    try:
        rows = await reads.status_rows(conn, now - report.DEPLOYMENTS_SINCE)
        budgets, problems = await _budgets(conn, config_path, home, now)
    finally:
        await conn.close()
    shown = reads.jsonable(report.build(rows, now, budgets, problems))
    if args.json:
        print_json(shown)
    else:
        print(render_status(shown, stdout_colour(args.color)))
    return 0


# What the hard budgets' lines were last computed from, under TETHER_HOME: tether.toml's budget
# settings (by the file's digest) and the verdict on each stored raise (by its digest and the
# founder's public key). With it, `tether status` needs neither pydantic (to validate the
# config) nor cryptography (to verify the raises) until the file or the raises change.
BUDGET_CACHE = Path("cache") / "budgets.json"


async def _budgets(
    conn: Any, config_path: Path | None, home: Path, now: datetime
) -> tuple[list[dict[str, Any]], list[str]]:
    """The hard budgets' lines (BudgetLine's JSON form), and what kept them from being shown."""
    cache = home / BUDGET_CACHE
    if config_path is None:
        return [], []
    try:
        raw = config_path.read_bytes()
        budgeted = bool(tomllib.loads(raw.decode()).get("budget"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raw, budgeted = b"", True  # the full reading says what is wrong with it
    if not budgeted:
        return [], []
    known = _cached(cache, raw)
    if known is not None:
        found = await _lines_from(conn, known, now)
        if found is not None:
            return found, []
    return await _budgets_validated(conn, config_path, home, raw, now)


def _cached(cache: Path, raw: bytes) -> dict[str, Any] | None:
    """The cache, if it was written for this tether.toml and this founder's key."""
    try:
        known: dict[str, Any] = json.loads(cache.read_text())
        if known["config"] != hashlib.sha256(raw).hexdigest():
            return None
        if known["key_file"] and Path(known["key_file"]).read_text().strip() != known["key"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return known


def _digest(row: dict[str, Any], key: str | None) -> str:
    """A stored raise as the founder's key judges it: the row, whole, and the key."""
    signed = [row["scope"], float(row["limit_usd"]), row["order_json"], key]
    return hashlib.sha256(json.dumps(signed, sort_keys=True).encode()).hexdigest()


async def _lines_from(
    conn: Any, known: dict[str, Any], now: datetime
) -> list[dict[str, Any]] | None:
    """The lines from the cached settings and verdicts; None when a raise is not in it."""
    settings = limits.Settings(known["daily"], known["team_monthly_usd"])

    def judge(row: dict[str, Any]) -> limits.Raise | None:
        digest = _digest(row, known["key"])
        if digest not in known["raises"]:
            raise _NotJudged
        verdict = known["raises"][digest]
        return limits.Raise(*verdict) if verdict is not None else None

    try:
        return await _budget_lines(conn, settings, now, judge)
    except _NotJudged:
        return None


class _NotJudged(Exception):
    """A stored raise the cache has no verdict on: the full reading judges it."""


async def _budget_lines(
    conn: Any,
    settings: limits.Settings,
    now: datetime,
    judge: Callable[[dict[str, Any]], limits.Raise | None],
) -> list[dict[str, Any]]:
    """Spend against each budget in force on `now`'s day; `judge` says what each stored raise
    sets (None: not the founder's)."""
    from tether.store import reads

    day = now.date()
    rows = await reads.budget_order_rows(conn, limits.scopes(settings, day))
    raises = [r for r in (judge(row) for row in rows) if r is not None]
    spent = await reads.spend_per_agent(conn, day)
    _, month_spent = await reads.budget_spend(conn, None, day)
    return limits.lines(settings, day, raises, spent, month_spent)


async def _budgets_validated(
    conn: Any, config_path: Path, home: Path, raw: bytes, now: datetime
) -> tuple[list[dict[str, Any]], list[str]]:
    """The lines from tether.toml validated and every raise verified; the cache written."""
    from tether import budgets
    from tether.config import load_config

    try:
        config = load_config(config_path)
    except TetherError as exc:  # the rest of the status is still worth showing
        return [], [f"budgets not shown: {exc}"]
    from tether.trust.keys import founder_pub_file, founder_pub_path

    settings = budgets.settings_of(config)
    # As the workers judge them: tether.toml's key, else the one `tether up` left in TETHER_HOME.
    key = config.founder.key_text()
    key_file = config.founder.public_key_file
    if not key:
        key = founder_pub_file(home)
        key_file = str(founder_pub_path(home)) if key else None
    verdicts: dict[str, list[Any] | None] = {}

    def judge(row: dict[str, Any]) -> limits.Raise | None:
        found = budgets.verified_raise(row, key)
        verdicts[_digest(row, key)] = list(found) if found is not None else None
        return found

    found = await _budget_lines(conn, settings, now, judge)
    cache = home / BUDGET_CACHE
    written = {
        "config": hashlib.sha256(raw).hexdigest(),
        "daily": dict(settings.daily),
        "team_monthly_usd": settings.team_monthly_usd,
        "key": key,
        "key_file": str(Path(key_file).expanduser()) if key_file else None,
        "raises": verdicts,
    }
    with contextlib.suppress(OSError):  # a read-only home: the next status validates again
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(written))
        partial.replace(cache)
    return found, []


def _parser(words: list[str]) -> argparse.ArgumentParser | None:
    """The parser for a read command this module answers on its own, or None: `--help` and
    every other command go to the full CLI (which has the same arguments, from here)."""
    if "-h" in words or "--help" in words:
        return None
    if words[:2] == ["task", "list"]:
        p = argparse.ArgumentParser(prog="tether task list", description=TASK_LIST_HELP)
        add_task_list_arguments(p)
        p.set_defaults(func=task_list, skip=2)
        return p
    if words[:1] == ["status"]:
        p = argparse.ArgumentParser(prog="tether status", description=STATUS_HELP)
        add_status_arguments(p)
        p.set_defaults(func=status, skip=1)
        return p
    if words[:1] == ["inbox"] and "done" not in words[1:]:
        p = argparse.ArgumentParser(prog="tether inbox", description=INBOX_HELP)
        add_inbox_arguments(p)
        p.set_defaults(func=inbox, skip=1)
        return p
    return None


def _show_closed(argv: list[str]) -> None:
    """`tether task show ID [--json]` of a closed task, answered here; else return."""
    import asyncio

    words = [w for w in argv[2:] if w != "--json"]
    if len(words) != 1 or words[0].startswith("-"):
        return
    env = os.environ
    dsn = database_url_from(env.get("DATABASE_URL") or None, home_from_env(env))
    try:
        record = asyncio.run(closed_task(words[0], dsn))
    except Exception:
        return
    if record is None:
        return
    if "--json" in argv:
        print_json(record)
    else:
        print(render_task_record(record))
    sys.stdout.flush()
    raise SystemExit(0)


def main(argv: list[str]) -> None:
    """Answer `argv` here when it is one of these read commands; else return, and the caller
    runs the full CLI (which also says what is wrong with words these parsers do not know)."""
    if argv[:2] == ["task", "show"] and "-h" not in argv and "--help" not in argv:
        _show_closed(argv)
        return
    parser = _parser(argv)
    if parser is None:
        return
    args, unknown = parser.parse_known_args(argv[parser.get_default("skip") :])
    if unknown:
        return
    from tether.ops.runtime import run_and_exit

    async def run() -> int:
        env = os.environ
        home = home_from_env(env)
        dsn = database_url_from(env.get("DATABASE_URL") or None, home)
        code: int
        if args.func is status:
            code = await status(args, dsn, config_path_from_env(env, home), home)
        else:
            code = await args.func(args, dsn)
        return code

    sys.stdout.flush()
    run_and_exit(run())
