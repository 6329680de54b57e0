"""Hard budgets (issue 15): an agent's daily budget and the team's monthly budget, beside the
anomaly governor. Crossing one ends the agent's process before the report that crossed it is
answered, the gateway's gate denies its tools, and only an order signed with the founder's key
(`tether budget raise`) lifts it: a row written into the orders table by anyone else is ignored.
Through the real Claude Code CLI and the scripted model, and the real `tether` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client

from tests.support import keys
from tests.support.claude_code import ensure_claude_code
from tests.support.cli import tether
from tests.support.helpers import FakeForge, clean_environment
from tests.support.model_api import ModelApi, Turn, Usage
from tests.support.runner import claude_runner, processes_with, run_in_phase
from tests.support.sessions import Team, running_team
from tether import budgets
from tether import client as api
from tether.contracts import (
    Report,
    RunRequest,
    SessionInput,
    ShellCheck,
    TaskSpec,
    TaskState,
    TokenUsage,
)
from tether.trust.signing import generate, order


def cli_env(team: Team, tmp_path: Path, fresh_db: str, temporal_address: str) -> dict[str, str]:
    """What the founder's `tether` command needs: the same tether.toml as the worker's."""
    config = tmp_path / "tether.toml"
    agents = "".join(f'[[agents]]\nname = "{a.name}"\n' for a in team.config.agents)
    budget = team.config.budget
    lines = [f'[founder]\npublic_key = "{team.config.founder.public_key}"\n', "[budget]\n"]
    if budget.agent_daily_usd is not None:
        lines.append(f"agent_daily_usd = {budget.agent_daily_usd}\n")
    if budget.team_monthly_usd is not None:
        lines.append(f"team_monthly_usd = {budget.team_monthly_usd}\n")
    config.write_text(agents + "".join(lines))
    return clean_environment(
        TETHER_HOME=str(keys.write(tmp_path / "founder-home")),
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=fresh_db,
        TETHER_TASK_QUEUE=team.task_queue,
        TETHER_CONFIG=str(config),
    )


async def test_a_daily_budget_stops_the_run_and_only_a_signed_raise_lifts_it(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    temporal_address: str,
) -> None:
    ensure_claude_code()
    (tmp_path / "bin").mkdir()
    key_path, public = generate(tmp_path / "founder")
    # $0.06 a turn at claude-sonnet's list price: the second turn crosses a $0.10 budget, far
    # below the cost governor's ceiling ($25), so the budget is what stops it.
    turns = [Turn.bash(f"echo research {i}", Usage(20_000, 40)) for i in range(8)]
    extra = {"founder": {"public_key": public}, "budget": {"agent_daily_usd": 0.10}}
    async with running_team(client, fresh_db, tmp_path, forge, extra) as team:
        env = cli_env(team, tmp_path, fresh_db, temporal_address)
        with ModelApi(turns) as model:
            analyst = claude_runner(team, "coder", model, tmp_path)
            task_id = f"research-{analyst.rsplit('-', 1)[1]}"
            spec = TaskSpec(id=task_id, title="Research", checks=[ShellCheck(command="true")])
            await api.create_task(client, team.task_queue, spec)
            await api.claim_task(client, task_id, analyst)
            request = RunRequest(prompt="Research the competitors.", task_id=task_id)
            started = await api.run_agent(client, team.task_queue, analyst, "claude-code", request)
            assert started.run is not None
            runtime_session = started.run.runtime_session

            view = await run_in_phase(client, analyst, "stopped", "the budget to stop the run", 90)
            hold = view.governor.hold
            assert hold is not None and hold.kind == "budget", hold
            assert hold.reason.startswith("it has spent $0.12 today (UTC), above its daily budget")
            assert view.run is not None and view.run.stop_reason is not None
            assert view.run.stop_reason.startswith("held by Tether's governor: it has spent")
            # Not one model turn after the one that crossed it, and the process is gone.
            assert len(model.main_requests()) == 2, [r.turn for r in model.main_requests()]
            assert processes_with(runtime_session) == []

        # The gateway's gate denies every tool; a new run is refused; the task is not paused
        # (the budget is the agent's, not the task's).
        gate = await api.session_gate(client, analyst)
        assert gate.deny is not None and "No more model turns until the founder raises" in gate.deny
        with pytest.raises(api.Refused, match="cannot run now: stopped by Tether: it has spent"):
            await api.run_agent(client, team.task_queue, analyst, "claude-code", request)
        record = await team.store.get_task(task_id)
        assert record is not None and record.task.state == TaskState.CLAIMED
        items = [i for i in await team.store.inbox() if i.kind == "budget_exceeded"]
        assert len(items) == 1 and items[0].subject == analyst
        assert items[0].action == f"tether budget raise --agent {analyst} --daily 1"

        # The founder sees it: the spend in the ledger against the limit.
        shown = await tether(env, "budget", "show", "--json")
        assert shown.code == 0, shown.err
        line = next(b for b in json.loads(shown.out) if b["name"] == analyst)
        assert line["limit_usd"] == 0.10 and line["spent_usd"] == pytest.approx(0.1212, abs=1e-3)
        status = await tether(env, "status")
        assert f"{analyst} stopped by a hard budget" in status.out, status.out
        assert f"{analyst} daily" in status.out and "121%" in status.out

        # A raise in the orders table that the founder's key did not sign changes nothing: the
        # founder's signed release is refused while the spend is still above the limit.
        day = datetime.now(UTC).date()
        scope = budgets.agent_scope(analyst, day)
        forged = order(
            "budget", budgets.subject(scope, 50), "founder", "", Ed25519PrivateKey.generate()
        )
        await team.store.add_budget_order(scope, 50.0, forged.model_dump(mode="json"))
        released = await tether(env, "session", "release", analyst, "--key", str(key_path))
        assert released.code == 3
        assert "still held: it has spent $0.12 today (UTC), above its daily budget" in released.err
        # Nor does a raise signed with another key, through the command.
        other, _ = generate(tmp_path / "other")
        refused = await tether(
            env, "budget", "raise", "--agent", analyst, "--daily", "1", "--key", str(other)
        )
        assert refused.code != 0 and "does not verify with the founder's public key" in refused.err

        raised = await tether(
            env, "budget", "raise", "--agent", analyst, "--daily", "1", "--key", str(key_path),
            "--reason", "launch week",
        )  # fmt: skip
        assert raised.code == 0, raised.err
        assert f"budget {scope} raised to $1.00" in raised.out
        assert f"{analyst}: released" in raised.out
        view = await api.session_view(client, analyst)
        assert view is not None and view.governor.hold is None
        assert (await api.session_gate(client, analyst)).deny is None
        assert view.governor.budget is not None
        assert view.governor.budget.raises == [f"{analyst} daily $1.00 by founder (launch week)"]
        assert not [i for i in await team.store.inbox() if i.kind == "budget_exceeded"]
        shown = await tether(env, "budget", "show")
        assert "launch week" in shown.out and "$1.00" in shown.out


async def test_the_teams_monthly_budget_counts_every_session_and_holds_a_new_one_at_start(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
) -> None:
    _, public = generate(tmp_path / "founder")
    extra = {"founder": {"public_key": public}, "budget": {"team_monthly_usd": 5.0}}
    async with running_team(client, fresh_db, tmp_path, forge, extra) as team:
        coder, devops = team.agent("coder"), team.agent("devops")
        # Another agent's ended session spent $4 today, as its ledger says.
        today = datetime.now(UTC).date().isoformat()
        await team.store.record_spend_days(devops, f"{devops}:earlier", {today: 4.0})

        await api.start_session(client, team.task_queue, SessionInput(agent=coder))
        usage = {"claude-sonnet-4-5": TokenUsage(input=200_000, output=10_000)}  # $0.75
        first = await api.report(client, coder, Report(usage=usage))
        assert first.deny is None
        second = await api.report(client, coder, Report(usage=usage))
        assert second.deny is not None
        assert second.deny.startswith(
            "stopped by Tether: the team has spent $5.50 this month (UTC), above its monthly "
            "budget of $5.00"
        )
        items = [i for i in await team.store.inbox() if i.kind == "budget_exceeded"]
        assert [i.action for i in items] == ["tether budget raise --team-monthly 9"]

        # Another agent's session, started now, is held before its process could run.
        with pytest.raises(api.Refused, match=r"the team has spent \$5.50 this month"):
            await api.run_agent(
                client, team.task_queue, devops, "command", RunRequest(prompt="Deploy")
            )
        view = await api.session_view(client, devops)
        assert view is not None and view.governor.hold is not None
        assert view.governor.hold.kind == "budget" and view.run is None
