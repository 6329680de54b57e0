"""A year's record of an eleven-agent team, for measuring what grows (issue 31).

Two steps:
1. **Templates, through Tether's own paths.** A short soak (scripts/soak.py) runs the team
   against a throwaway stack: sessions reporting through the gateway, tasks created, claimed and
   submitted through the client with their checks run by the worker, deployments requested,
   approved with the founder's signed tag and rolled out. What it left in PostgreSQL (tasks and
   their events, sessions, the tool-call log, the cost ledger and spend, deployments and their
   audit) is kept as the templates (`--home`/templates.json).
2. **The days, in bulk.** Running a year at its real pace takes a year, and compressed through
   Temporal it takes days on these machines; so each day of the year is written through the
   store's own functions (`record`, `record_session`, `record_tool_calls`, `record_costs`,
   `record_spend_days`, `post_inbox`, `acknowledge`, `audit`, `record_deployment`) from the
   templates with new ids and the clock moved to that day: rows the product itself wrote,
   re-stamped, oldest day first (so the audit chain's order is the clock's). Temporal gets none of
   it: its closed workflows leave it after the namespace's retention anyway, and nothing the
   founder reads depends on them.

The seed's rates per day: 220 tasks, 110 sessions, 8,200 tool calls (a call every few seconds
while an agent works), 5 deployments, 4 inbox items (a year: 80,000 tasks, 40,000 sessions, 3
million tool calls, 2,000 deployments). `--size month` is 30 days, for the test suite;
`--size year` 365. `--scale` multiplies every rate (0.1: a tenth of a team).

Stop and resume: each day is written in one go and recorded in `--home`/progress.json; the next
run starts after the last day done. Writing a day again changes nothing (every write is keyed).

    .venv/bin/python scripts/year.py --size year --home year-runs/year
    .venv/bin/python scripts/year.py --database-url URL --size month   # into a given database
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.year import FIXTURE, Templates, write_day  # noqa: E402
from tether.store import Store, connect_pool, migrate  # noqa: E402

SIZES = {"month": 30, "year": 365}


# -- step 1: the templates ------------------------------------------------------------------


def make_templates(home: Path, minutes: float) -> Path:
    """Run the team (scripts/soak.py) for `minutes` and keep what it wrote."""
    path = home / "templates.json"
    if path.exists():
        return path
    print(f"templates: running the team through Tether's own paths for {minutes:g} minutes")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "soak.py"),
            "--minutes",
            str(minutes),
            "--task-every",
            "10",
            "--call-every",
            "2",
            "--deploy-every",
            "60",
            "--fail-every",
            "100000",
            "--out",
            str(home / "templates-run"),
            "--templates",
            str(path),
        ],
        check=True,
        cwd=ROOT,
    )
    return path


# -- step 2: the days -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(args: argparse.Namespace) -> AsyncIterator[str]:
    """The database to fill: the one given, or an embedded server in `--home` (kept)."""
    if args.database_url:
        yield args.database_url
        return
    from tether.ops.stack import EmbeddedPostgres, free_port

    port_file = args.home / "pg-port"
    port = int(port_file.read_text()) if port_file.exists() else free_port()
    port_file.write_text(str(port))
    pg = EmbeddedPostgres(args.home / "pg", port=port)
    pg.start()
    try:
        yield pg.url
    finally:
        pg.stop()


async def fill(url: str, templates: Path, days: int, scale: float, progress: Path) -> None:
    t = Templates.load(templates)
    agents = t.agents()
    done = json.loads(progress.read_text()) if progress.exists() else {}
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days)
    pool = await connect_pool(url)
    try:
        await migrate(pool)
        store = Store(pool)
        started = time.monotonic()
        for n in range(days):
            day = first + timedelta(days=n)
            if day.isoformat() in done:
                continue
            written = await write_day(store, t, day, n, scale, agents)
            done[day.isoformat()] = written
            progress.write_text(json.dumps(done))
            if n % 10 == 0 or n == days - 1:
                print(
                    f"{day}: day {n + 1} of {days} written ({written['tasks']} tasks, "
                    f"{written['tool_calls']} tool calls; {time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    finally:
        await pool.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="month")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every daily rate")
    parser.add_argument("--home", type=Path, help="where the templates, progress and database live")
    parser.add_argument("--database-url", help="fill this database instead of one in --home")
    parser.add_argument(
        "--templates",
        type=Path,
        help=f"templates made before (default: {FIXTURE.relative_to(ROOT)}, one run's, trimmed)",
    )
    parser.add_argument(
        "--live-minutes",
        type=float,
        default=0.0,
        help="make new templates: run the team through Tether's own paths this long first",
    )
    args = parser.parse_args()
    args.home = args.home or ROOT / "year-runs" / args.size
    args.home.mkdir(parents=True, exist_ok=True)
    templates = args.templates or (
        make_templates(args.home, args.live_minutes) if args.live_minutes else FIXTURE
    )
    async with database(args) as url:
        await fill(url, templates, SIZES[args.size], args.scale, args.home / "progress.json")
    print(f"done: {SIZES[args.size]} days in {url if args.database_url else args.home}")
    return 0


if __name__ == "__main__":
    from tether.ops.runtime import run_and_exit

    run_and_exit(main())
