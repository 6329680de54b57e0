"""Tether runs the agent's process itself (issue 15, first part): `tether run` starts it in the
agent's own worktree, supervised by its session workflow as a heartbeating activity; a hold or
the founder's stop ends its whole process group; a crash restarts it, and identical crashes in a
row are a loop. Through the real Claude Code CLI against the scripted model, and through the
`command` runtime with small real programs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from tests.support import keys
from tests.support.claude_code import BINARY, ensure_claude_code
from tests.support.cli import tether
from tests.support.helpers import FakeForge, clean_environment, commit_file, eventually, git
from tests.support.model_api import MODEL, ModelApi, Turn, Usage
from tests.support.payloads import KUBECTL_RETRIES, forbidden_kubectl
from tests.support.runner import (
    alive,
    claude_runner,
    processes_with,
    run_in_phase,
    run_on_a_task,
    run_view,
    set_runner,
    task_reaches,
)
from tests.support.sessions import running_team
from tether import client as api
from tether.contracts import (
    Report,
    RunRequest,
    SessionState,
    SessionView,
    ShellCheck,
    StopInput,
    TaskSpec,
    TaskState,
    ToolCall,
)
from tether.trust import signing


async def test_a_loop_in_a_run_ends_the_process_before_another_model_turn(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """The real Claude Code, started by `tether run`: at the fifth identical failure the hold
    ends its process group before the report is answered, so the model is never asked again."""
    ensure_claude_code()
    bin_dir = forbidden_kubectl(tmp_path / "bin")
    turns = [Turn.bash(c, Usage(20_000 + 1000 * i, 40)) for i, c in enumerate(KUBECTL_RETRIES)]
    turns += [Turn.bash("kubectl rollout status deploy/api -n prod"), Turn.say("Gave up.")]
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        # The repository the agent's worktree is made from has the infra folder it cds into.
        commit_file(team.repo, "infra/api.yaml", "kind: Deployment\n", "infra")
        with ModelApi(turns) as model:
            devops = set_runner(
                team,
                "devops",
                "claude-code",
                binary=str(BINARY),
                model=MODEL,
                home=str(tmp_path / "claude-home"),
                env=model.claude_env(bin_dir),
                stop_grace_seconds=2,
            )
            task_id = f"rollout-{devops.rsplit('-', 1)[1]}"
            spec = TaskSpec(id=task_id, title="Roll out", checks=[ShellCheck(command="true")])
            await api.create_task(client, team.task_queue, spec)
            await api.claim_task(client, task_id, devops)
            request = RunRequest(prompt="Roll out api 1.4.3 to prod.", task_id=task_id)
            started = await api.run_agent(client, team.task_queue, devops, "claude-code", request)
            assert started.run is not None
            session = started.run.runtime_session

            view = await run_in_phase(
                client, devops, "stopped", "the run to be stopped by the hold", 90
            )
            assert view.run is not None and view.run.stop_reason is not None
            assert view.run.stop_reason.startswith("held by Tether's governor: kubectl set")
            assert view.governor.hold is not None and view.governor.hold.kind == "loop"
            # Five model turns, five failures, and not one request after the hold.
            assert len(model.main_requests()) == 5, [r.turn for r in model.main_requests()]
            assert processes_with(session) == []

            async def blocked() -> bool:
                record = await team.store.get_task(task_id)
                return record is not None and record.task.state == TaskState.BLOCKED

            await eventually(blocked, "the task to be blocked")

        # It ran in its own worktree, on its own branch, with Tether's hooks.
        worktree = tmp_path / "tether-home" / "worktrees" / devops
        assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD") == f"tether/{devops}"
        assert (worktree / ".claude" / "settings.json").exists()
        # The token made for the run no longer opens the gateway.
        runner_tokens = [
            t for t in await team.store.agent_tokens(devops) if t["created_by"] == "tether-runner"
        ]
        assert len(runner_tokens) == 1 and runner_tokens[0]["revoked_at"] is not None


async def test_at_95_percent_the_process_ends_and_the_next_session_finishes_from_the_brief(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """The handoff acts: the process is ended, the session archived, and Tether starts the next
    session itself; its first context is the handoff brief, and it finishes the task."""
    ensure_claude_code()
    (tmp_path / "bin").mkdir()
    usable = 167_000  # what Claude Code leaves of 200,000 with auto-compact on
    brief_marker = "Handoff from your previous session:"
    later: list[str] = []
    results: list[str] = []

    def script(n: int, request: Any) -> Turn:
        if brief_marker not in request.shown():
            # The first session climbs to 96% of the usable window at its second step.
            pct = 0.50 if n == 0 else 0.96
            return Turn.bash(f"echo step {n}", Usage(int(pct * usable), 40))
        later.append(request.shown())
        results.append(str(request.last_tool_results()))
        if len(later) == 1:
            return Turn.bash(f"{sys.executable} -m tether task submit {task_id} --agent {devops}")
        return Turn.say("Task done.")

    async with running_team(client, fresh_db, tmp_path, forge) as team:
        with ModelApi(script) as model:
            devops = claude_runner(team, "devops", model, tmp_path)
            task_id = f"handoff-{devops.rsplit('-', 1)[1]}"
            spec = TaskSpec(id=task_id, title="Ship it", checks=[ShellCheck(command="true")])
            await api.create_task(client, team.task_queue, spec)
            await api.claim_task(client, task_id, devops)
            request = RunRequest(prompt="Work through the steps.", task_id=task_id)
            first = await api.run_agent(client, team.task_queue, devops, "claude-code", request)
            assert first.run is not None

            async def next_session_done() -> SessionView | None:
                view = await run_view(client, devops)
                if view is None or view.run is None or view.started_at == first.started_at:
                    return None
                return view if view.ended_at is not None else None

            view = await eventually(next_session_done, "the next session to finish", seconds=120)
            assert view.run is not None and view.run.phase == "finished", view.run
            assert view.run.request.by == "tether (handoff)"
            assert view.external_id != first.external_id
            # Ended by Claude Code's own SessionEnd as it exited, or by the runner after it.
            assert view.run.last is not None and view.run.last.result == "success"
            assert brief_marker in later[0] and f"Task you hold: {task_id}" in later[0]
            # The first process made two requests and was ended at the crossing: none after.
            before = [r for r in model.main_requests() if brief_marker not in r.shown()]
            assert len(before) == 2
            assert processes_with(first.run.runtime_session) == []
            record = await team.store.get_task(task_id)
            assert record is not None and record.task.state == TaskState.DONE, results
            handoffs = await team.store.pool.fetch(
                "SELECT * FROM handoffs WHERE agent = $1", devops
            )
            assert len(handoffs) == 1


async def test_at_70_percent_the_run_is_compacted_and_the_same_session_goes_on(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """The compact stage acts: the process is ended before another turn on the full context,
    Claude Code's /compact runs on the same runtime session with Tether's instructions, and the
    session resumes and finishes."""
    ensure_claude_code()
    (tmp_path / "bin").mkdir()
    usable = 167_000
    kinds: list[str] = []

    def script(n: int, request: Any) -> Turn:
        shown = request.shown()
        if "Tether compacted this session" in shown:
            kinds.append("resumed")
            return Turn.say("Done.", Usage(5000, 10))
        if "Additional Instructions:" in shown:
            kinds.append("compaction")
            assert "decisions made, the files being edited" in shown
            return Turn.say(
                "<analysis>two steps</analysis><summary>Ran step 0 and step 1.</summary>",
                Usage(2000, 50),
            )
        kinds.append("work")
        pct = 0.50 if kinds.count("work") == 1 else 0.72
        return Turn.bash(f"echo step {n}", Usage(int(pct * usable), 40))

    async with running_team(client, fresh_db, tmp_path, forge) as team:
        with ModelApi(script) as model:
            devops = claude_runner(team, "devops", model, tmp_path)
            request = RunRequest(prompt="Work through the steps.")
            first = await api.run_agent(client, team.task_queue, devops, "claude-code", request)
            assert first.run is not None

            async def finished() -> SessionView | None:
                view = await run_view(client, devops)
                run = view.run if view else None
                return view if run is not None and run.phase == "finished" else None

            view = await eventually(finished, "the compacted run to finish", seconds=90)
            assert view.run is not None
            assert view.run.compactions == 1 and view.run.attempts == 2, view.run
            # No work turn on the full context after the crossing: the compaction came next.
            first_resumed = kinds.index("resumed")
            assert kinds[:2] == ["work", "work"], kinds
            assert set(kinds[2:first_resumed]) == {"compaction"}, kinds
            # (the Stop hook's deliverable check may ask the resumed session for one more turn)
            assert set(kinds[first_resumed:]) == {"resumed"}, kinds
            # The same runtime session throughout.
            assert view.external_id == first.external_id
            assert processes_with(first.run.runtime_session) == []


async def test_a_cost_pause_in_a_run_ends_the_process_the_same_way(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """Past the cost ceiling the task is paused and the process ended before the report that
    crossed it is answered: no model turn is paid for after the pause."""
    ensure_claude_code()
    (tmp_path / "bin").mkdir()
    # $0.06 a turn at claude-sonnet's list price: the second turn crosses a $0.10 ceiling.
    turns = [Turn.bash(f"echo research {i}", Usage(20_000, 40)) for i in range(8)]
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        with ModelApi(turns) as model:
            analyst = claude_runner(team, "coder", model, tmp_path)
            task_id = await run_on_a_task(
                client, team, analyst, "claude-code", "Research", "Research the competitors."
            )

            view = await run_in_phase(
                client, analyst, "stopped", "the cost pause to stop the run", 90
            )
            hold = view.governor.hold
            assert hold is not None and hold.kind == "cost"
            assert view.run is not None and view.run.stop_reason is not None
            assert view.run.stop_reason.startswith("held by Tether's governor: task")
            assert len(model.main_requests()) == 2, [r.turn for r in model.main_requests()]

            await task_reaches(team, task_id, TaskState.PAUSED)


async def test_wake_runs_an_idle_agent_once_work_is_assigned_to_it(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    from tether.ops.stack import ensure_wake_schedules

    prompts = tmp_path / "prompts"
    program = tmp_path / "agent.py"
    program.write_text(
        "import pathlib, sys\n"
        f"with pathlib.Path({str(prompts)!r}).open('a') as out:\n"
        "    out.write(sys.argv[1] + '\\n')\n"
    )
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = set_runner(
            team,
            "coder",
            "command",
            isolation="none",
            command=[sys.executable, str(program), "{prompt}"],
        )
        agent = next(a for a in team.config.agents if a.name == coder)
        agent.wake = "every 1s"
        assert await ensure_wake_schedules(client, team.task_queue, [agent]) == [coder]
        handle = client.get_schedule_handle(f"tether-wake-{coder}")
        try:
            # Rounds with nothing assigned and nothing open run nothing.
            await eventually(lambda: handle.describe(), "the schedule to exist")

            async def rounds() -> int:
                return (await handle.describe()).info.num_actions

            await eventually(lambda: rounds_at_least(rounds, 2), "two idle rounds", 20)
            assert not prompts.exists()

            # A task assigned to it, not claimed yet: the wake runs it to claim the task.
            task_id = f"wake-{coder.rsplit('-', 1)[1]}"
            spec = TaskSpec(
                id=task_id,
                title="Fix the login bug",
                assignee=coder,
                checks=[ShellCheck(command="true")],
            )
            await api.create_task(client, team.task_queue, spec)
            await eventually(prompts.exists, "the wake to run the agent for its task", 20)
            first = prompts.read_text().splitlines()[0]
            assert first == (
                f"Task {task_id} is open: Fix the login bug. Claim it with `tether task claim "
                f"{task_id} --agent {coder}`, then do it."
            )
            # Claimed (the process has ended): the next round runs it on its task.
            await api.claim_task(client, task_id, coder)
            working = f"Work on your task {task_id}: Fix the login bug"

            def woken_on_task() -> bool:
                return working in prompts.read_text().splitlines()

            await eventually(woken_on_task, "the wake to run the agent on its claimed task", 20)
            view = await run_view(client, coder)
            assert view is not None and view.run is not None
            assert view.run.request.by == "tether (wake)" and view.run.request.task_id == task_id
        finally:
            agent.wake = None
            assert await ensure_wake_schedules(client, team.task_queue, [agent]) == []


async def rounds_at_least(rounds: Any, n: int) -> bool:
    return bool(await rounds() >= n)


async def test_max_agents_queues_the_rest_visibly_until_one_finishes(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    release = tmp_path / "release"
    program = tmp_path / "agent.py"
    program.write_text(
        "import pathlib, sys, time\n"
        f"pathlib.Path({str(tmp_path)!r}, 'started-' + sys.argv[1]).touch()\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n"
        "    time.sleep(0.05)\n"
    )
    async with running_team(client, fresh_db, tmp_path, forge, max_agents=1) as team:
        names = []
        for role in ("coder", "devops"):
            argv = [sys.executable, str(program), "{agent}"]
            names.append(set_runner(team, role, "command", isolation="none", command=argv))
        first, second = names
        await api.run_agent(client, team.task_queue, first, "command", RunRequest())
        await eventually((tmp_path / f"started-{first}").exists, "the first agent to start")
        await api.run_agent(client, team.task_queue, second, "command", RunRequest())

        async def runs() -> dict[str, str | None]:
            report = await api.gather_status(team.store)
            return {a.agent: a.run for a in report.agents}

        queued = await eventually(
            lambda: _has(runs, {first: "running", second: "queued"}), "the second to queue"
        )
        assert queued and not (tmp_path / f"started-{second}").exists()
        release.touch()
        await eventually((tmp_path / f"started-{second}").exists, "the second agent's turn", 30)

        async def finished(agent: str) -> bool:
            view = await run_view(client, agent)
            return view is not None and view.run is not None and view.run.phase == "finished"

        for agent in names:
            await eventually(lambda agent=agent: finished(agent), f"{agent}'s run to finish")


async def _has(runs: Any, wanted: dict[str, str]) -> bool:
    found = await runs()
    return all(found.get(k) == v for k, v in wanted.items())


async def test_a_refused_model_key_blocks_the_session_at_the_first_refusal(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """Claude Code retries a 401 from the model API ten times over minutes (its stream says
    `api_retry`, error_status 401): Tether ends the process at the first one and blocks the
    session on the credential, never a success and never a retry loop."""
    ensure_claude_code()
    (tmp_path / "bin").mkdir()

    def refuse(n: int, request: Any) -> Turn:
        return Turn(error=(401, "authentication_error", "invalid x-api-key"))

    async with running_team(client, fresh_db, tmp_path, forge) as team:
        with ModelApi(refuse) as model:
            devops = claude_runner(team, "devops", model, tmp_path)
            started = await api.run_agent(
                client, team.task_queue, devops, "claude-code", RunRequest(prompt="Go.")
            )
            assert started.run is not None

            async def blocked() -> SessionView | None:
                view = await run_view(client, devops)
                return view if view is not None and view.state == SessionState.BLOCKED else None

            view = await eventually(blocked, "the session to be blocked", seconds=30)
            assert view.blocker is not None and view.blocker.subject == "the model API key"
            assert "rejected by the model API (401)" in view.blocker.reason
            assert view.run is not None and view.run.phase == "failed"
            assert len(model.main_requests()) <= 2  # not ten
            assert processes_with(started.run.runtime_session) == []
            items = [i for i in await team.store.inbox() if i.kind == "credential_blocked"]
            assert any(devops in i.title for i in items), [i.title for i in items]


async def test_tether_run_and_stop_on_the_command_line(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    temporal_address: str,
) -> None:
    pids = tmp_path / "pid"
    program = tmp_path / "agent.py"
    program.write_text(
        "import os, pathlib, time\n"
        f"pathlib.Path({str(pids)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(300)\n"
    )
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        argv = [sys.executable, str(program)]
        coder = set_runner(team, "coder", "command", isolation="none", command=argv)
        config = tmp_path / "tether.toml"
        config.write_text(
            f'[[agents]]\nname = "{coder}"\nruntime = "command"\n'
            f"[agents.run]\ncommand = {json.dumps(argv)}\n"
        )
        env = clean_environment(
            TETHER_HOME=str(keys.write(tmp_path / "founder-home")),
            TEMPORAL_ADDRESS=temporal_address,
            DATABASE_URL=fresh_db,
            TETHER_TASK_QUEUE=team.task_queue,
            TETHER_CONFIG=str(config),
        )
        started = await tether(env, "run", coder, "--prompt", "Fix the login bug")
        assert started.code == 0, started.err
        assert f"session of {coder}: active" in started.out
        assert "run by Tether: running, attempt 1" in started.out
        await eventually(pids.exists, "the agent to start")
        pid = int(pids.read_text())
        # An agent Tether runs outside its sandbox says so where the founder looks.
        status = await tether(env, "status")
        assert status.code == 0, status.err
        line = next((ln for ln in status.out.splitlines() if coder in ln), status.out)
        assert "running (unsandboxed)" in line, status.out
        stopped = await tether(env, "stop", coder, "--reason", "done for today")
        assert stopped.code == 0, stopped.err
        assert "run by Tether: stopped" in stopped.out
        assert "stopped: done for today (founder)" in stopped.out
        assert not alive(pid)
        unknown = await tether(env, "run", "nobody")
        assert unknown.code != 0 and "agent 'nobody' is not in tether.toml" in unknown.err


def crashing_program(tmp_path: Path, script: str) -> list[str]:
    path = tmp_path / "agent.py"
    path.write_text(script)
    return [sys.executable, str(path), "{session}"]


async def test_a_crash_restarts_and_identical_crashes_are_a_loop(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    counter = tmp_path / "starts"
    program = crashing_program(
        tmp_path,
        "import sys, pathlib\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "sys.stderr.write('fatal: config file /etc/agent.yaml missing\\n')\n"
        "sys.exit(3)\n",
    )
    key_path, public = signing.generate(tmp_path / "founder")
    founder = {"founder": {"public_key": public}}
    async with running_team(client, fresh_db, tmp_path, forge, founder) as team:
        coder = set_runner(
            team,
            "coder",
            "command",
            isolation="none",
            command=program,
            crash_limit=3,
            restart_backoff_seconds=0.2,
        )
        # Started on a task it never claimed: the loop holds the agent, not the task.
        task_id = f"config-{coder.rsplit('-', 1)[1]}"
        spec = TaskSpec(id=task_id, title="Fix the config", checks=[ShellCheck(command="true")])
        await api.create_task(client, team.task_queue, spec)
        go = RunRequest(prompt="go", task_id=task_id)
        await api.run_agent(client, team.task_queue, coder, "command", go)

        async def failed() -> SessionView | None:
            view = await run_view(client, coder)
            return view if view and view.run and view.run.phase == "failed" else None

        view = await eventually(failed, "three identical crashes", seconds=60)
        assert view.run is not None and view.run.attempts == 3, view.run
        assert counter.read_text() == "3"
        hold = view.governor.hold
        assert hold is not None and hold.kind == "loop"
        assert "failed 3 times the same way" in hold.reason
        assert "exit 3: fatal: config file /etc/agent.yaml missing" in hold.reason

        # The founder hears of it (the inbox item is written just after the hold).
        async def told() -> str | None:
            items = [i for i in await team.store.inbox() if i.kind == "loop_blocked"]
            return next((i.action for i in items if coder in i.title), None)

        # ... with the command that lifts this hold: the task is open, nobody's to unblock.
        assert await eventually(told, "the loop_blocked inbox item") == (
            f"tether session release {coder}"
        )
        view = await run_view(client, coder)
        assert view is not None and view.governor.hold is not None
        assert view.governor.hold.task_id is None
        assert (await api.get_view(client, task_id)).state == TaskState.OPEN
        key = signing.load_private(key_path)
        order = signing.order("release", coder, "founder", "config fixed", key)
        released = await api.release_session(client, coder, "founder", "config fixed", order)
        assert released.governor.hold is None


async def test_a_crash_then_a_clean_exit_finishes_the_run_and_the_session(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    counter = tmp_path / "starts"
    program = crashing_program(
        tmp_path,
        "import sys, pathlib\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "if n == 1:\n"
        "    sys.stderr.write('segfault in a dependency\\n'); sys.exit(139)\n"
        "print('done')\n",
    )
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = set_runner(
            team, "coder", "command", isolation="none", command=program, restart_backoff_seconds=0.1
        )
        await api.run_agent(client, team.task_queue, coder, "command", RunRequest(prompt="go"))

        async def ended() -> SessionView | None:
            view = await run_view(client, coder)
            return view if view and view.ended_at is not None else None

        view = await eventually(ended, "the run to finish and the session to end", seconds=60)
        assert view.run is not None and view.run.phase == "finished"
        assert view.run.attempts == 2 and counter.read_text() == "2"
        assert view.end_reason is not None and view.end_reason.startswith(
            "the agent's run finished"
        )


async def test_the_founders_stop_ends_the_whole_process_group_within_seconds(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    pids = tmp_path / "pids"
    program = crashing_program(
        tmp_path,
        "import os, subprocess, sys, time, pathlib\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        f"pathlib.Path({str(pids)!r}).write_text(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(300)\n",
    )
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = set_runner(
            team, "coder", "command", isolation="none", command=program, stop_grace_seconds=1
        )
        await api.run_agent(client, team.task_queue, coder, "command", RunRequest(prompt="go"))
        await eventually(pids.exists, "the agent to start")
        parent, child = (int(p) for p in pids.read_text().split())
        assert alive(parent) and alive(child)
        # Another run while it runs is refused.
        with pytest.raises(Exception, match="already running"):
            await api.run_agent(client, team.task_queue, coder, "command", RunRequest())
        view = await api.stop_agent(client, coder, StopInput(reason="wrong branch"))
        assert view.run is not None and view.run.phase == "stopped"
        assert view.run.stop_reason == "wrong branch (founder)"
        assert not alive(parent) and not alive(child)
        # Stopping what is not running says so.
        with pytest.raises(Exception, match="nothing to stop"):
            await api.stop_agent(client, coder, StopInput())
        # The session is still open: the founder may run it again.
        assert view.ended_at is None


async def test_a_command_runtimes_own_usage_is_counted_and_its_cost_pause_acts(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """An agent with no hooks at all: the runner reads its stream-json usage as it comes, and
    that alone prices the task and pauses it, ending the process within a message or two."""
    printed = tmp_path / "printed"
    program = crashing_program(
        tmp_path,
        "import json, sys, time\n"
        "for i in range(40):\n"
        "    message = {'id': f'msg_{i}', 'model': 'claude-sonnet-4-5',\n"
        "               'usage': {'input_tokens': 20000, 'output_tokens': 40}}\n"
        "    for _ in range(2):  # a message's usage repeats (parallel tool calls)\n"
        "        print(json.dumps({'type': 'assistant', 'message': message,\n"
        "                          'parent_tool_use_id': None}), flush=True)\n"
        f"    open({str(printed)!r}, 'a').write('x')\n"
        "    time.sleep(0.4)\n",
    )
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        agent = set_runner(
            team, "coder", "command", isolation="none", command=program, usage="stream-json"
        )
        task_id = await run_on_a_task(
            client, team, agent, "command", "Draft", "Draft the launch post."
        )

        view = await run_in_phase(
            client, agent, "stopped", "the stream's own spend to pause the task", 60
        )
        hold = view.governor.hold
        assert hold is not None and hold.kind == "cost", hold
        # Each message once ($0.0606), though the stream printed each twice; two cross $0.10.
        messages = len(printed.read_text())
        assert view.governor.cost_usd == pytest.approx(
            0.0606 * round(view.governor.cost_usd / 0.0606)
        )
        assert 0.12 < view.governor.cost_usd <= 0.0606 * messages + 1e-9
        assert messages <= 6, f"the process went on for {messages} messages after the pause"

        await task_reaches(team, task_id, TaskState.PAUSED)


async def test_the_runtimes_own_figures_and_the_hooks_count_a_claude_code_run_once(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """The real Claude Code reports its spend twice, through the hooks and in its stream: the
    session counts it once, and the answer after the last tool call (which no hook reports)
    is counted from the stream's result."""
    ensure_claude_code()
    (tmp_path / "bin").mkdir()
    turns = [
        Turn.bash("echo one", Usage(20_000, 40)),
        Turn.bash("echo two", Usage(21_000, 40)),
        Turn.say("Both done.", Usage(22_000, 400)),
    ]
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        with ModelApi(turns) as model:
            coder = claude_runner(team, "coder", model, tmp_path)
            await api.run_agent(
                client, team.task_queue, coder, "claude-code", RunRequest(prompt="Do both.")
            )

            async def ended() -> SessionView | None:
                view = await run_view(client, coder)
                return view if view and view.ended_at is not None else None

            view = await eventually(ended, "the run to finish", seconds=90)
        assert view.run is not None and view.run.phase == "finished"
        own = view.run.cost_usd  # Claude Code's total_cost_usd for the process
        expected = (63_000 * 3 + 480 * 15) / 1_000_000
        assert own == pytest.approx(expected, rel=0.01)
        assert view.governor.cost_usd == pytest.approx(own, rel=0.01)
        # Not twice: the three turns (and the CLI's own small side request), each once.
        assert 63_000 <= view.governor.tokens.input < 63_100
        assert 480 <= view.governor.tokens.output < 500


async def test_a_runtime_that_cannot_start_fails_the_run_and_tells_the_founder(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        missing = str(tmp_path / "no-such-agent")
        coder = set_runner(team, "coder", "command", command=[missing, "{prompt}"])
        await api.run_agent(client, team.task_queue, coder, "command", RunRequest(prompt="go"))

        async def failed() -> SessionView | None:
            view = await run_view(client, coder)
            run = view.run if view else None
            return view if run is not None and run.phase == "failed" else None

        view = await eventually(failed, "the run to fail", seconds=30)
        assert view.run is not None and view.run.last is not None
        assert f"could not start {coder}'s runtime ({missing})" in view.run.last.summary
        items = [i for i in await team.store.inbox() if i.kind == "run_failed"]
        assert len(items) == 1 and items[0].action == f"fix it, then: tether run {coder}"
        assert view.ended_at is None  # the session stays open for the next run


async def test_the_agents_process_outlives_its_sessions_continues_as_new(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """3,000 reports while Tether runs the agent: the session continues as new three times
    (every 1,000 reports while a process runs), and the agent's process is the same one all
    along, started once, never restarted; it ends when it ends, and the run with it."""
    pid_file, done = tmp_path / "pid", tmp_path / "done"
    program = crashing_program(
        tmp_path,
        "import os, pathlib, time\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        f"while not pathlib.Path({str(done)!r}).exists():\n"
        "    time.sleep(0.1)\n",
    )
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = set_runner(team, "coder", "command", isolation="none", command=program)
        await api.run_agent(client, team.task_queue, coder, "command", RunRequest(prompt="go"))
        await eventually(pid_file.exists, "the agent to start")
        pid = int(pid_file.read_text())
        session = f"session-{coder}"
        first = (await client.get_workflow_handle(session).describe()).run_id

        # One after the other, as one agent's hooks send them (each seal's number follows the
        # one before).
        for n in range(3_000):
            call = ToolCall(tool="Bash", ok=True, action="Bash:ls", tool_use_id=f"toolu_{n}")
            await api.report(client, coder, Report(tool_call=call))
        assert alive(pid) and int(pid_file.read_text()) == pid
        view = await run_view(client, coder)
        assert view is not None and view.run is not None
        assert (view.run.phase, view.run.attempts) == ("running", 1)

        # The third continue-as-new follows the 3,000th report's answer, and Temporal's list
        # (its visibility store) catches up a moment later.
        async def four_runs() -> bool:
            runs = [r async for r in client.list_workflows(f"WorkflowId = '{session}'")]
            return len(runs) >= 4

        await eventually(four_runs, "the session to continue as new three times")
        assert (await client.get_workflow_handle(session).describe()).run_id != first
        assert view.governor.reports == 3_000
        done.touch()
        view = await run_in_phase(client, coder, "finished", "the process to finish", 60)
        assert view.run is not None and view.run.attempts == 1 and not alive(pid)


async def test_a_process_whose_session_is_terminated_from_outside_is_ended(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """The session abandons its process's workflow on purpose (its continues-as-new must not
    touch it), so terminating the session from outside (the Web UI) ends nothing by itself:
    the runner, asking whether the session is still open, ends the process."""
    pid_file = tmp_path / "pid"
    program = crashing_program(
        tmp_path,
        "import os, pathlib, time\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(300)\n",
    )
    async with running_team(client, fresh_db, tmp_path, forge, session_check_seconds=0.5) as team:
        coder = set_runner(
            team, "coder", "command", isolation="none", command=program, stop_grace_seconds=1
        )
        await api.run_agent(client, team.task_queue, coder, "command", RunRequest(prompt="go"))
        await eventually(pid_file.exists, "the agent to start")
        pid = int(pid_file.read_text())
        await client.get_workflow_handle(f"session-{coder}").terminate("from the Web UI")
        await eventually(lambda: not alive(pid), "the process to end", seconds=20)
