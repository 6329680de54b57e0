"""The founder's cockpit: webhook delivery (once per inbox item, retried, never blocking the
workflow that posted it, never losing the row), and the inbox's one command per item."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.notify import start_delivery
from tests.support.cli import cli, tether
from tests.support.helpers import FakeForge, Webhook, eventually, history_text
from tests.support.sessions import (
    REJECTED_TOKEN,
    TOKEN_ENV,
    report_the_same_failure,
    running_team,
)
from tether import client as api
from tether import constants
from tether.contracts import DeliveryInput, SessionInput


def webhook_config(attempts: int) -> dict[str, Any]:
    return {
        "notifications": {
            "webhook": {"env": "TETHER_TEST_WEBHOOK"},
            "webhook_attempts": attempts,
            "webhook_max_interval_seconds": 1,
        }
    }


async def test_webhook_gets_each_item_once_with_retries_and_never_blocks_or_loses_it(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = Webhook()
    monkeypatch.setenv("TETHER_TEST_WEBHOOK", hook.url)
    monkeypatch.setenv(TOKEN_ENV, REJECTED_TOKEN)  # every session start posts a blocker
    try:
        async with running_team(client, fresh_db, tmp_path, forge, webhook_config(4)) as team:
            coder, q = team.agent("coder"), team.task_queue

            async def row(n: int) -> dict[str, Any]:
                rows = await team.store.pool.fetch(
                    "SELECT id, delivered_at, delivery_error, cleared_at FROM inbox ORDER BY id"
                )
                return dict(rows[n]) if len(rows) > n else {}

            # 1. The webhook hangs: the session still starts and blocks on its credential at
            # once; the post waits in the delivery workflow, not in the session.
            hook.open.clear()
            view = await api.start_session(client, q, SessionInput(agent=coder))
            assert view.state == "blocked"
            first = await row(0)
            assert first["delivered_at"] is None
            await eventually(lambda: hook.in_flight == 1, "a hanging post")
            hook.open.set()
            first = await eventually(
                lambda: _delivered(row, 0), "the first item delivered after the webhook woke"
            )
            assert len(hook.received) == 1
            body = hook.received[0]
            assert body["text"].startswith(f"*Tether: {coder} is blocked: credential github")
            assert f"tether session recheck {coder}" in body["text"]
            assert body["tether"]["id"] == first["id"]
            assert body["tether"]["kind"] == "credential_blocked"
            # The founder's cockpit page for it (the gateway's URL, TETHER_GATEWAY_URL).
            assert body["tether"]["page"] == f"{team.gateway.url}/founder"
            assert f"From your phone: {team.gateway.url}/founder" in body["text"]
            await api.end_session(client, coder, "over", "founder")

            # 2. Two 503s, then success: delivered once, after three posts of the same item.
            hook.fail_first = 2
            await api.start_session(client, q, SessionInput(agent=coder))
            second = await eventually(lambda: _delivered(row, 1), "the retried delivery")
            posts = [b for b in hook.received if b["tether"]["id"] == second["id"]]
            assert len(posts) == 3 and second["delivery_error"] is None
            await api.end_session(client, coder, "over", "founder")

            # Starting the same item's delivery again is refused by its workflow id: once.
            again = DeliveryInput(inbox_id=second["id"], kind="credential_blocked")
            assert not await start_delivery(client, q, again, "again")
            await asyncio.sleep(1.5)
            assert len([b for b in hook.received if b["tether"]["id"] == second["id"]]) == 3

            # 3. A webhook that keeps failing: the retry budget ends, the row stays, open, with
            # the error; no post is made after the budget.
            hook.status = 500
            await api.start_session(client, q, SessionInput(agent=coder))
            third = await eventually(lambda: _failed(row, 2), "the failed delivery")
            assert third["delivery_error"] == (
                "webhook failed: webhook answered HTTP 500 at attempt 4"
            )
            assert third["cleared_at"] is None
            assert len([b for b in hook.received if b["tether"]["id"] == third["id"]]) == 4
            await api.end_session(client, coder, "over", "founder")

            # 4. A 404 means a wrong URL: not retried.
            hook.status = 404
            await api.start_session(client, q, SessionInput(agent=coder))
            fourth = await eventually(lambda: _failed(row, 3), "the rejected delivery")
            assert fourth["delivery_error"].endswith("HTTP 404 at attempt 1")
            await api.end_session(client, coder, "over", "founder")

            # Open items stay in the inbox whatever the webhook did; the delivery workflows
            # are in Temporal with a summary and their state, and the URL is nowhere.
            items = await team.store.inbox()
            assert {i.id for i in items} >= {third["id"], fourth["id"]}
            for n, state in ((first, "delivered"), (third, "failed")):
                handle = client.get_workflow_handle(constants.notify_workflow_id(n["id"]))
                described = await handle.describe()
                assert described.typed_search_attributes.get(constants.SA_STATE) == state
                assert (await described.static_summary() or "").startswith("Webhook: ")
                text = history_text(await handle.fetch_history())
                assert hook.url not in text
            assert hook.url not in str(await team.store.inbox(include_cleared=True))
    finally:
        hook.open.set()
        hook.stop()


async def _delivered(row: Callable[[int], Awaitable[dict[str, Any]]], n: int) -> Any:
    r = await row(n)
    return r if r and r["delivered_at"] is not None else None


async def _failed(row: Callable[[int], Awaitable[dict[str, Any]]], n: int) -> Any:
    r = await row(n)
    return r if r and r["delivery_error"] else None


async def test_inbox_lists_one_command_per_item_and_done_clears_notices(
    cli_env: dict[str, str], database_url: str
) -> None:
    from tether.contracts import InboxItem
    from tether.store import Store, connect_pool, migrate

    pool = await connect_pool(database_url)
    try:
        await migrate(pool)
        store = Store(pool)
        tag = uuid.uuid4().hex[:8]
        notice, _ = await store.post_inbox(
            InboxItem(
                key=f"overlap:{tag}",
                kind="overlap",
                subject=f"t-{tag}",
                title=f"two agents on t-{tag}",
            )
        )
        paused, _ = await store.post_inbox(
            InboxItem(
                key=f"paused:{tag}",
                kind="cost_paused",
                subject=f"t-{tag}",
                title=f"task t-{tag} is paused",
                action=f"tether resume t-{tag}",
            )
        )
        run = await tether(cli_env, "inbox")
        assert run.code == 0, run.err
        lines = run.out.splitlines()
        # Newest first, each followed by its one command; piped output has no colour codes.
        at = {n: i for i, line in enumerate(lines) for n in (notice, paused) if f"#{n} " in line}
        assert at[paused] < at[notice]
        assert lines[at[paused] + 1].strip() == f"-> tether resume t-{tag}"
        assert lines[at[notice] + 1].strip() == f"-> tether inbox done {notice}"
        assert "\033[" not in run.out
        coloured = await tether(cli_env, "inbox", "--color", "always")
        assert "\033[1m" in coloured.out

        done = await tether(cli_env, "inbox", "done", str(notice))
        assert done.code == 0 and done.out.strip() == f"cleared #{notice}"
        listed = await tether(cli_env, "inbox", "--json")
        assert notice not in {i["id"] for i in json.loads(listed.out)}
        twice = await tether(cli_env, "inbox", "done", str(notice), "999999999")
        assert twice.code == 3
        assert f"#{notice}: not open (already cleared, or no such item)" in twice.err
        assert "#999999999: not open (already cleared, or no such item)" in twice.err
        # An item with an action is not acknowledged away (an agent could hide its own hold):
        # only acting on it clears it.
        held = await tether(cli_env, "inbox", "done", str(paused))
        assert held.code == 3
        assert f"#{paused}: it is cleared by acting on it: tether resume t-{tag}" in held.err
        still = await tether(cli_env, "inbox", "--json")
        assert paused in {i["id"] for i in json.loads(still.out)}
    finally:
        await pool.close()


async def read_light(env: dict[str, str], *args: str) -> str:
    """A read command's output, once it is known that it imported neither pydantic nor the
    Temporal SDK to answer."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "importtime", "-m", "tether.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in err.decode().splitlines()]
    heavy = [m for m in imported if m.startswith(("temporalio", "pydantic"))]
    assert not heavy, (args, heavy[:5])
    return out.decode()


async def test_task_list_and_inbox_answer_from_postgresql_alone_with_the_models_json(
    fresh_db: str, tmp_path: Path
) -> None:
    """`tether task list` and `tether inbox` read PostgreSQL without importing pydantic or the
    Temporal SDK (a third of the full CLI's start-up), and still print exactly what the
    contracts would: every field, in order, for tasks and items of every shape."""
    from tests.support.helpers import clean_environment
    from tether.contracts import CheckEvidence, InboxItem, ShellCheck, TaskSpec, TaskState, TaskView
    from tether.store import Store, connect_pool, migrate

    now = datetime.now(UTC)
    pool = await connect_pool(fresh_db)
    try:
        await migrate(pool)
        store = Store(pool)
        plain = TaskView(
            spec=TaskSpec(id="fast-1", title="Read me fast", checks=[ShellCheck(command="true")]),
            created_at=now,
            updated_at=now,
        )
        held = TaskView(
            spec=TaskSpec(
                id="fast-2",
                title="Held, with evidence",
                description="every field set",
                checks=[ShellCheck(command="false", name="fails")],
            ),
            state=TaskState.PAUSED,
            assignee="coder",
            created_at=now + timedelta(seconds=1),
            updated_at=now.replace(microsecond=0) + timedelta(seconds=2),
            hold_reason="cost above 5x the rolling average",
            held_from=TaskState.CLAIMED,
            held_by="tether",
            last_note="it works on my machine",
            last_evidence=[
                CheckEvidence(
                    index=0, name="fails", kind="shell", passed=False, summary="exit 1",
                    started_at=now, exit_code=1, output_excerpt="no",
                )
            ],
            submissions=1,
            seq=4,
        )  # fmt: skip
        for view in (plain, held):
            await store.record(view, [])
        notice, _ = await store.post_inbox(
            InboxItem(key="k1", kind="overlap", subject="x", title="look", detail={"see": "a"})
        )
        await store.post_inbox(
            InboxItem(key="k2", kind="cost_paused", subject="y", title="act", action="tether go")
        )
        await store.post_inbox(InboxItem(key="k3", kind="overlap", subject="z", title="seen"))
        await store.acknowledge([notice + 2])
        tasks = [v.model_dump(mode="json") for v in await store.list_tasks()]
        items = [
            {**i.model_dump(mode="json"), "command": i.command}
            for i in await store.inbox(include_cleared=True)
        ]
    finally:
        await pool.close()

    env = clean_environment(DATABASE_URL=fresh_db, TETHER_HOME=str(tmp_path / "home"))

    out = await read_light(env, "task", "list", "--json")
    assert json.loads(out) == tasks
    assert [list(t) for t in json.loads(out)] == [list(t) for t in tasks]  # the same order
    out = await read_light(env, "task", "list", "--json", "--state", "paused", "--agent", "coder")
    assert [t["spec"]["id"] for t in json.loads(out)] == ["fast-2"]
    out = await read_light(env, "task", "list")
    assert out.splitlines()[1:] == [  # newest first
        "fast-2                   paused     coder          Held, with evidence",
        "fast-1                   open       -              Read me fast",
    ]
    out = await read_light(env, "inbox", "--json", "--all")
    assert json.loads(out) == items
    out = await read_light(env, "inbox", "--json")
    assert [i["title"] for i in json.loads(out)] == ["act", "look"]
    out = await read_light(env, "inbox")
    lines = out.splitlines()
    assert lines[0].startswith(f"#{notice + 1} ") and lines[0].endswith("[cost_paused] act")
    assert lines[1:2] == ["    -> tether go"]
    assert lines[2].startswith(f"#{notice} ") and lines[2].endswith("[overlap] look")
    assert lines[3:] == [f"    -> tether inbox done {notice}", "       see: a"]

    # Words these commands do not take get the full CLI's own answer, not a second parser's.
    wrong = await cli(env, "inbox", "bogus")
    assert wrong[0] == 2 and "invalid choice: 'bogus'" in wrong[2]
    wrong = await cli(env, "task", "list", "--state", "bogus")
    assert wrong[0] == 2 and "invalid choice: 'bogus'" in wrong[2]


def test_the_read_commands_plain_forms_name_every_field_of_the_contracts() -> None:
    """What `tether/store/reads.py` writes without pydantic is the contracts' field list."""
    from tether.cli.cockpit import TASK_STATES
    from tether.contracts import InboxItem, TaskState, TaskView
    from tether.store import reads

    assert tuple(TaskView.model_fields) == reads.TASK_VIEW_FIELDS
    assert tuple(InboxItem.model_fields) == reads.INBOX_FIELDS
    assert tuple(s.value for s in TaskState) == TASK_STATES


async def test_status_reads_postgresql_alone_with_each_sessions_own_figures(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """`tether status` asks no workflow: the open sessions keep what it shows of them in their
    rows (a hold or a new task at once; context and cost with each ledger write), and it prints
    the report's documented shape without importing pydantic or the Temporal SDK."""
    from tests.support.helpers import clean_environment
    from tether.client.status import StatusReport
    from tether.contracts import Report

    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, devops = team.agent("coder"), team.agent("devops")
        for agent in (coder, devops):
            await api.start_session(client, team.task_queue, SessionInput(agent=agent))
        env = clean_environment(DATABASE_URL=fresh_db, TETHER_HOME=str(tmp_path / "home"))

        async def status() -> dict[str, Any]:
            report: dict[str, Any] = json.loads(await read_light(env, "status", "--json"))
            # Exactly the documented shape: every field, in order, in the models' JSON forms.
            assert StatusReport.model_validate(report).model_dump(mode="json") == report
            return report

        def agent(report: dict[str, Any], name: str) -> dict[str, Any]:
            return next(a for a in report["agents"] if a["agent"] == name)

        async def shows(name: str, **expected: Any) -> dict[str, Any] | None:
            found = agent(await status(), name)
            return found if all(found[k] == v for k, v in expected.items()) else None

        first = await eventually(lambda: shows(coder, session="active"), "the coder's figures")
        assert first is not None and first["figures_at"] is not None
        assert first["context_pct"] is None and first["cost_usd"] == 0.0

        # Fifty reports (the most a session goes before it writes its ledger): the numbers
        # arrive with that write, without anyone asking the session.
        for _ in range(50):
            await api.report(client, coder, Report(context_tokens=18_000, cost_usd=0.001))
        spent = await eventually(
            lambda: shows(coder, context_pct=0.09), "the coder's numbers after its ledger write"
        )
        # As of the write: the session's first comes at a report of its own (1 to 50).
        assert spent is not None and 0.001 <= spent["cost_usd"] <= 0.050 + 1e-9

        # A hold shows at once, with no report after it: the same failure five times.
        await report_the_same_failure(client, devops)
        held = await eventually(
            lambda: shows(devops, hold="loop: kubectl set failed 5 times the same way (Forbidden)"),
            "the devops hold in the status",
        )
        assert held is not None and held["session"] == "active"
        report = await status()
        assert agent(report, coder)["hold"] is None
        same = await api.gather_status(team.store)
        assert same.model_dump(mode="json", exclude={"generated_at"}) == {
            k: v for k, v in report.items() if k != "generated_at"
        }


async def test_status_shows_hard_budgets_without_pydantic_once_the_raises_are_judged(
    fresh_db: str, tmp_path: Path
) -> None:
    """With a [budget] table, the first `tether status` validates tether.toml and verifies the
    founder's raises (pydantic, cryptography) and keeps the verdicts under TETHER_HOME; later
    ones reuse them and import neither, until the file or the raises change. The lines are the
    same either way: a forged raise stays ignored, a signed one counts."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.support.helpers import clean_environment
    from tether import budgets
    from tether.config import load_config
    from tether.store import Store, connect_pool, migrate
    from tether.trust.signing import generate, load_private, order

    home = tmp_path / "home"
    key_path, public = generate(home)
    config_path = tmp_path / "tether.toml"

    def configure(daily: float) -> None:
        config_path.write_text(
            f'[[agents]]\nname = "coder"\n[[agents]]\nname = "ops"\n'
            f'[founder]\npublic_key_file = "{home / "founder.pub"}"\n'
            f"[budget]\nagent_daily_usd = {daily}\nteam_monthly_usd = 900.0\n"
            "[budget.agents]\nops = 5.0\n"
        )

    (home / "founder.pub").write_text(public)
    configure(50.0)
    env = clean_environment(
        DATABASE_URL=fresh_db, TETHER_HOME=str(home), TETHER_CONFIG=str(config_path)
    )
    day = datetime.now(UTC).date()
    pool = await connect_pool(fresh_db)
    try:
        await migrate(pool)
        store = Store(pool)
        await store.record_spend_days("coder", "coder:s1", {day.isoformat(): 12.5})
        await store.record_spend_days("ops", "ops:s1", {day.isoformat(): 1.25})

        async def raise_to(scope: str, usd: float, key: Ed25519PrivateKey) -> None:
            signed = order("budget", budgets.subject(scope, usd), "founder", "launch", key)
            await store.add_budget_order(scope, usd, signed.model_dump(mode="json"))

        await raise_to(budgets.agent_scope("coder", day), 80.0, load_private(key_path))
        await raise_to(budgets.team_scope(day), 5000.0, Ed25519PrivateKey.generate())  # forged

        async def lines_now() -> list[dict[str, Any]]:
            found = await budgets.budget_lines(store, load_config(config_path))
            return [b.model_dump(mode="json") for b in found]

        async def shown(light: bool) -> list[dict[str, Any]]:
            if light:
                out = await read_light(env, "status", "--json")
            else:
                code, out, err = await cli(env, "status", "--json")
                assert code == 0, err
            budgets_shown: list[dict[str, Any]] = json.loads(out)["budgets"]
            return budgets_shown

        first = await shown(light=False)  # nothing kept yet: the full reading
        assert first == await lines_now()
        by_name = {b["name"]: b for b in first}
        assert by_name["coder"]["limit_usd"] == 80.0 and by_name["coder"]["spent_usd"] == 12.5
        assert by_name["coder"]["raised"] == "coder daily $80.00 by founder (launch)"
        assert by_name["ops"]["limit_usd"] == 5.0 and by_name["ops"]["raised"] is None
        assert by_name["team"]["limit_usd"] == 900.0  # the forged raise counts for nothing
        assert await shown(light=True) == first

        # A new raise is judged once (the full reading), then kept.
        await raise_to(budgets.agent_scope("ops", day), 7.0, load_private(key_path))
        assert {b["name"]: b["limit_usd"] for b in await shown(light=False)}["ops"] == 7.0
        assert await shown(light=True) == await lines_now()
        # A changed founder's key file: the raises are judged again (none is its key's now).
        (home / "founder.pub").write_text(generate(tmp_path / "other")[1])
        again = await shown(light=False)
        assert again == await lines_now()
        limits = {b["name"]: b["limit_usd"] for b in again}
        assert limits == {"coder": 50.0, "ops": 5.0, "team": 900.0}
        assert await shown(light=True) == again
        # A changed tether.toml: read again.
        configure(60.0)
        assert {b["name"]: b["limit_usd"] for b in await shown(light=False)}["coder"] == 60.0
        assert await shown(light=True) == await lines_now()
    finally:
        await pool.close()


async def test_an_idle_sessions_numbers_reach_the_status_a_minute_after_its_last_write(
    time_skipping_env: WorkflowEnvironment,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
) -> None:
    """A session that goes quiet with reports not yet in its ledger writes them (and the
    figures the status shows) a minute after its last write, by a timer of its own: before,
    they waited for its next report, which an idle agent never sends."""
    from tether.client.status import gather_status
    from tether.contracts import Report

    env = time_skipping_env
    async with running_team(env.client, fresh_db, tmp_path, forge) as team:
        coder = team.agent("coder")
        await api.start_session(env.client, team.task_queue, SessionInput(agent=coder))

        async def coder_shown() -> Any:
            report = await gather_status(team.store)
            found = next((a for a in report.agents if a.agent == coder), None)
            return found if found is not None and found.figures_at is not None else None

        first = await eventually(coder_shown, "the coder's first figures")
        assert first.cost_usd == 0.0
        # Two reports (a session's first ledger write comes at report 1 to 50): then silence.
        for _ in range(2):
            await api.report(env.client, coder, Report(context_tokens=18_000, cost_usd=0.25))
        await env.sleep(timedelta(seconds=61))
        shown = await eventually(
            lambda: _numbers(coder_shown, 0.5), "the idle coder's cost in the status"
        )
        assert shown.context_pct == 0.09


async def _numbers(probe: Any, cost: float) -> Any:
    found = await probe()
    return found if found is not None and found.cost_usd == pytest.approx(cost) else None


async def test_task_show_of_a_closed_task_answers_from_postgresql_alone(
    fresh_db: str, tmp_path: Path
) -> None:
    """`tether task show` of a closed task (its record is final in PostgreSQL) imports neither
    pydantic nor the Temporal SDK, and prints what the full CLI prints of the model, text and
    JSON; a task still open goes to the full CLI (its workflow may know more)."""
    from tests.support.helpers import clean_environment
    from tether.cli.tasks import render_record
    from tether.contracts import (
        Artifact,
        CheckEvidence,
        ShellCheck,
        TaskEvent,
        TaskSpec,
        TaskState,
        TaskView,
        TokenUsage,
        ToolCall,
        ToolCallRecord,
    )
    from tether.store import Store, connect_pool, migrate

    now = datetime.now(UTC).replace(microsecond=0)
    spec = TaskSpec(
        id="closed-1",
        title="Closed last year",
        checks=[ShellCheck(command="true", name="unit"), ShellCheck(command="make lint")],
        artifact=Artifact(kind="file", path="docs/out.md"),
    )
    view = TaskView(
        spec=spec,
        state=TaskState.DONE,
        assignee="coder",
        created_at=now - timedelta(days=330),
        updated_at=now - timedelta(days=329),
        last_note="all green",
        last_evidence=[
            CheckEvidence(
                index=0, name="unit", kind="shell", passed=True, summary="exit 0",
                started_at=now, exit_code=0, output_excerpt="ok",
            )
        ],
        submissions=1,
        seq=3,
    )  # fmt: skip
    events = [
        TaskEvent(seq=1, at=view.created_at, actor="founder", kind="created", to_state="open"),
        TaskEvent(
            seq=2, at=view.created_at + timedelta(hours=1), actor="coder", kind="claimed",
            from_state="open", to_state="claimed", detail={"by": "coder"},
        ),
        TaskEvent(
            seq=3, at=view.updated_at, actor="tether", kind="verified", from_state="claimed",
            to_state="done",
        ),
    ]  # fmt: skip
    pool = await connect_pool(fresh_db)
    try:
        await migrate(pool)
        store = Store(pool)
        await store.record(view, events)
        await store.record(
            TaskView(spec=spec.model_copy(update={"id": "open-1"}), created_at=now, updated_at=now),
            [],
        )
        calls = [
            ToolCallRecord(seq=n, at=now, task_id="closed-1", call=ToolCall(tool="Bash", ok=n > 1))
            for n in range(1, 4)
        ]
        await store.record_tool_calls("coder", "s1", calls)
        await store.record_costs("coder", "s1", {"closed-1": 1.5}, {"closed-1": TokenUsage()})
        record = await store.get_task("closed-1")
    finally:
        await pool.close()
    assert record is not None
    env = clean_environment(DATABASE_URL=fresh_db, TETHER_HOME=str(tmp_path / "home"))

    out = await read_light(env, "task", "show", "closed-1")
    assert out.rstrip("\n") == render_record(record)
    assert "spent $1.50 over 3 tool calls (1 failed)" in out
    assert json.loads(await read_light(env, "task", "show", "closed-1", "--json")) == (
        record.model_dump(mode="json")
    )
    # An open task, and one that does not exist, are the full CLI's (no Temporal here: it says
    # what it could not reach, or that there is no such task).
    code, _, err = await cli(env, "task", "show", "nope")
    assert code == 2 and "no task 'nope'" in err
