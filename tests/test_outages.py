"""A command that has to wait says why: PostgreSQL down under the worker, or no worker at all."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

import worker as tether_worker
from tests.support import keys
from tests.support.cli import TETHER, tether
from tests.support.helpers import clean_environment, eventually
from tether.config import TetherConfig
from tether.ops.stack import EmbeddedPostgres, free_port
from tether.store import Store, connect_pool, migrate


async def _lines_until(stream: asyncio.StreamReader, text: str, seconds: float) -> list[str]:
    seen: list[str] = []
    async with asyncio.timeout(seconds):
        while line := await stream.readline():
            seen.append(line.decode())
            if text in seen[-1]:
                return seen
    raise AssertionError(f"the command ended without a line with {text!r}: {seen}")


async def test_a_command_waiting_on_a_postgresql_outage_says_so_and_then_finishes(
    client: Client, temporal_address: str, tmp_path: Path
) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    await asyncio.to_thread(pg.start)
    pool = await connect_pool(pg.url)
    await migrate(pool)
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    env = clean_environment(
        TETHER_HOME=str(keys.write(tmp_path / "home")),
        TEMPORAL_ADDRESS=temporal_address,
        TETHER_TASK_QUEUE=queue,
        DATABASE_URL=pg.url,
    )
    task_id = f"outage-{uuid.uuid4().hex[:6]}"
    try:
        async with tether_worker.build_worker(
            client, queue, Store(pool), TetherConfig(), keys.KEYS
        ):
            await asyncio.to_thread(pg.stop)
            # Down for real before the command starts: a new connection is refused.
            try:
                probe = await asyncpg.connect(pg.url, timeout=5)
            except (OSError, asyncpg.PostgresError):
                pass
            else:
                await probe.close()
                raise AssertionError("PostgreSQL still answers after stop()")
            # The task is the workflow's: creating it needs no PostgreSQL, and `task show`
            # answers from the workflow while the read model cannot be written.
            early = f"{task_id}-early"
            created = await tether(
                env, "task", "create", "--id", early, "--title", "early", "--shell", "true"
            )
            assert created.code == 0 and f"created task {early}" in created.out, created
            shown = await tether(env, "task", "show", early)
            assert shown.code == 0 and "state: open" in shown.out, shown
            assert "cannot connect to PostgreSQL" in shown.err, shown.err
            # `--wait` waits for the read model too, and says why it waits.
            proc = await asyncio.create_subprocess_exec(
                *TETHER,
                "task",
                "create",
                "--wait",
                "--id",
                task_id,
                "--title",
                "written while PostgreSQL is down",
                "--shell",
                "true",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert proc.stderr is not None and proc.stdout is not None
            try:
                said = await _lines_until(proc.stderr, "still waiting", 60)
            except AssertionError as exc:
                # Say how the command ended (seen once in CI: it ended with nothing on stderr).
                out = await proc.stdout.read()
                code = await proc.wait()
                raise AssertionError(f"{exc}; exit {code}; stdout {out.decode()[-500:]!r}") from exc
            assert said[-1].startswith(f"tether: task {task_id}: still waiting: record_task is "), (
                said,
                (await proc.communicate())[0].decode(),
            )
            assert "retrying (attempt" in said[-1]
            assert "cannot reach PostgreSQL (ConnectionRefusedError" in said[-1]
            await asyncio.to_thread(pg.start)
            out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
            assert proc.returncode == 0, err.decode()
            assert task_id in out.decode() and "Traceback" not in err.decode()
            # Nothing written during the outage was lost: the early task's creation too.
            store = Store(pool)
            recorded = await store.get_task(task_id)
            assert recorded is not None and [e.kind for e in recorded.events] == ["created"]

            async def early_written() -> bool:
                found = await store.get_task(early)
                return found is not None and [e.kind for e in found.events] == ["created"]

            await eventually(early_written, "the early task in PostgreSQL", seconds=90)
    finally:
        await pool.close()
        await asyncio.to_thread(pg.stop)


async def test_a_command_with_no_worker_to_answer_says_so(
    temporal_address: str, tmp_path: Path
) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    env = clean_environment(
        TETHER_HOME=str(keys.write(tmp_path / "home")),
        TEMPORAL_ADDRESS=temporal_address,
        TETHER_TASK_QUEUE=queue,
    )
    proc = await asyncio.create_subprocess_exec(
        *TETHER,
        "task",
        "create",
        "--id",
        f"lonely-{uuid.uuid4().hex[:6]}",
        "--title",
        "nobody runs this",
        "--shell",
        "true",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        said = await _lines_until(proc.stderr, "still waiting", 60)
        assert f"is a Tether worker running on task queue {queue}?" in said[-1]
    finally:
        proc.kill()
        await proc.wait()


async def test_a_submit_caught_by_a_temporal_restart_finishes_once_without_resubmitting(
    fresh_db: str, tmp_path: Path
) -> None:
    """Temporal stops while `tether task submit` waits for the checks and comes back: the
    command sends the same update id again and ends with the verdict; the task was submitted
    once."""
    from tether import client as api
    from tether.client import connect
    from tether.contracts import ShellCheck, TaskSpec
    from tether.ops.stack import start_temporal_dev_server

    port, db_file = free_port(), tmp_path / "temporal.db"
    server = await start_temporal_dev_server(
        port=port, ui_port=None, http_port=None, db_file=db_file
    )
    address = f"127.0.0.1:{port}"
    pool = await connect_pool(fresh_db)
    await migrate(pool)
    queue, task_id = f"restart-{uuid.uuid4().hex[:8]}", f"restart-{uuid.uuid4().hex[:6]}"
    env = clean_environment(
        TETHER_HOME=str(keys.write(tmp_path / "home")),
        TEMPORAL_ADDRESS=address,
        TETHER_TASK_QUEUE=queue,
    )
    try:
        client = await connect(address, "default", signer=keys.FOUNDER)
        async with tether_worker.build_worker(
            client, queue, Store(pool), TetherConfig(), keys.KEYS
        ):
            spec = TaskSpec(id=task_id, title="t", checks=[ShellCheck(command="sleep 6")])
            await api.create_task(client, queue, spec)
            await api.claim_task(client, task_id, "coder")
            proc = await asyncio.create_subprocess_exec(
                *TETHER,
                "task",
                "submit",
                task_id,
                "--agent",
                "coder",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            await asyncio.sleep(2)  # the submit waits on its check
            await server.shutdown()
            # Longer than the SDK's own retries of a failed call (about 15 s).
            await asyncio.sleep(20)
            server = await start_temporal_dev_server(
                port=port, ui_port=None, http_port=None, db_file=db_file
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=150)
            assert proc.returncode == 0, (out.decode(), err.decode())
            assert "Traceback" not in err.decode()
            assert f"task {task_id}: Temporal is unreachable" in err.decode()
            view = await api.get_view(client, task_id)
            assert view.submissions == 1 and view.state.value == "done"
    finally:
        await pool.close()
        await server.shutdown()


async def test_a_failed_figures_write_holds_up_no_session_and_the_row_catches_up(
    client: Client, tmp_path: Path
) -> None:
    """The figures a session keeps for `tether status` are written by local activity. With
    PostgreSQL down that write fails (twice, in about a second) and the session goes on
    answering; once PostgreSQL is back, its next ledger write brings the row up to date, and a
    hold after that shows at once."""
    from tests.support.sessions import report_the_same_failure
    from tether import client as api
    from tether.client.status import gather_status
    from tether.contracts import Report, SessionInput, ShellCheck, TaskSpec

    pg = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    await asyncio.to_thread(pg.start)
    pool = await connect_pool(pg.url)
    await migrate(pool)
    store = Store(pool)
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    agent = f"figures-{uuid.uuid4().hex[:6]}"
    task_id = f"figures-{uuid.uuid4().hex[:6]}"
    config = TetherConfig.model_validate({"agents": [{"name": agent}]})

    async def shown() -> dict[str, Any]:
        report = await gather_status(store)
        return next(a.model_dump() for a in report.agents if a.agent == agent)

    try:
        async with tether_worker.build_worker(client, queue, store, config, keys.KEYS):
            await api.start_session(client, queue, SessionInput(agent=agent, runtime="sdk"))
            spec = TaskSpec(id=task_id, title="claimed while PostgreSQL is down",
                            checks=[ShellCheck(command="true")])  # fmt: skip
            await api.create_task(client, queue, spec)
            await eventually(lambda: _has(shown, figures_at=bool), "the session's first figures")
            await asyncio.to_thread(pg.stop)
            # The claim tells the session: its task changes, and its figures write fails.
            await api.claim_task(client, task_id, agent)
            await eventually(
                lambda: _session_has(client, agent, task_id), "the session to hold the task"
            )
            await asyncio.sleep(3)  # the write's two attempts, a second apart, are over
            answer = await asyncio.wait_for(
                api.report(client, agent, Report(context_tokens=10_000)), timeout=30
            )
            assert answer is not None  # the session still answers
            await asyncio.to_thread(pg.start)
            # The ledger is written within 50 reports, with the figures of the moment.
            for _ in range(50):
                await api.report(client, agent, Report(context_tokens=10_000))
            assert await eventually(
                lambda: _has(shown, task_id=lambda v: v == task_id, context_pct=bool),
                "the session's task in the status once PostgreSQL is back",
                seconds=90,
            )
            # A hold shows with no report after it.
            await report_the_same_failure(client, agent)
            assert await eventually(
                lambda: _has(shown, hold=lambda v: str(v).startswith("loop: kubectl set")),
                "the hold in the status",
            )
    finally:
        await pool.close()
        await asyncio.to_thread(pg.stop)


async def _session_has(client: Client, agent: str, task_id: str) -> bool:
    from tether import client as api

    view = await api.session_view(client, agent)
    return view is not None and view.task_id == task_id


async def _has(probe: Any, **expected: Any) -> bool:
    found = await probe()
    return all(check(found[key]) for key, check in expected.items())


async def test_a_worker_process_says_a_postgresql_restart_in_lines_not_tracebacks(
    client: Client, temporal_address: str, tmp_path: Path
) -> None:
    """PostgreSQL restarted under a worker process (found by the soak: its log filled with a
    traceback for every retry of asyncpg's pool and of every activity attempt): each retry is
    one line saying what failed and why, and the work written meanwhile arrives."""
    import signal
    import sys

    from tether import client as api
    from tether.contracts import ShellCheck, TaskSpec

    pg = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    await asyncio.to_thread(pg.start)
    pool = await connect_pool(pg.url)
    await migrate(pool)
    queue = f"outage-log-{uuid.uuid4().hex[:8]}"
    env = clean_environment(
        TETHER_HOME=str(keys.write(tmp_path / "home")),
        TEMPORAL_ADDRESS=temporal_address,
        TETHER_TASK_QUEUE=queue,
        DATABASE_URL=pg.url,
    )
    log = tmp_path / "worker.log"
    root = Path(__file__).resolve().parent.parent
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(root / "worker.py"), env=env, stdout=out, stderr=out
        )
    try:
        await eventually(lambda: "worker polling" in log.read_text(), "the worker polling", 30)
        await asyncio.to_thread(pg.stop)
        task_id = f"outage-{uuid.uuid4().hex[:6]}"
        check = ShellCheck(command="true")
        spec = TaskSpec(id=task_id, title="written while PostgreSQL restarts", checks=[check])
        await api.create_task(client, queue, spec)
        await eventually(
            lambda: "StoreUnavailable" in log.read_text(), "a failed attempt in the log", 60
        )
        await asyncio.to_thread(pg.start)

        async def written() -> bool:
            return await pool.fetchval("SELECT count(*) FROM tasks WHERE id = $1", task_id) == 1

        await eventually(written, "the task in PostgreSQL once it is back", 90)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
        await pool.close()
        await asyncio.to_thread(pg.stop)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    failed = [line for line in text.splitlines() if "Completing activity as failed" in line]
    assert failed and all("StoreUnavailable: cannot reach PostgreSQL" in f for f in failed), failed
