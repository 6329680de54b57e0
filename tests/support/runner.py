"""Agents Tether runs itself, in tests: their `[agents.run]` as tether.toml would say it, and
what is left of their processes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from temporalio.client import Client

from tests.support.claude_code import BINARY
from tests.support.helpers import eventually
from tests.support.model_api import MODEL, ModelApi
from tests.support.sessions import Team
from tether import client as api
from tether.config import AgentRunner
from tether.contracts import RunRequest, SessionView, ShellCheck, TaskSpec, TaskState


def set_runner(team: Team, role: str, runtime: str, isolation: str = "sandbox", **run: Any) -> str:
    """The agent's `[agents.run]`, as tether.toml would say it (the worker reads it live).
    `isolation="none"` for a test of the runner's process handling that watches the program
    from the host (its pid, files it writes outside its worktree): tests/test_sandbox.py holds
    what the sandbox itself refuses."""
    agent = next(a for a in team.config.agents if a.name == team.agent(role))
    agent.runtime = runtime
    agent.isolation = "none" if isolation == "none" else "sandbox"
    agent.run = AgentRunner.model_validate(run)
    return agent.name


async def run_view(client: Client, agent: str) -> SessionView | None:
    return await api.session_view(client, agent)


async def run_in_phase(
    client: Client, agent: str, phase: str, what: str, seconds: float = 90
) -> SessionView:
    """The agent's session once the process Tether runs for it is in `phase` (e.g. stopped)."""
    from tests.support.helpers import eventually

    async def reached() -> SessionView | None:
        view = await run_view(client, agent)
        return (
            view if view is not None and view.run is not None and view.run.phase == phase else None
        )

    try:
        return await eventually(reached, what, seconds=seconds)
    except AssertionError as exc:
        view = await run_view(client, agent)
        raise AssertionError(f"{exc}; the run is {view.run if view else None}") from None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose: it runs nothing.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False


def processes_with(text: str) -> list[int]:
    """Live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def claude_runner(team: Team, role: str, model: ModelApi, tmp_path: Path, **more: Any) -> str:
    """The agent's `[agents.run]` for the pinned Claude Code against the scripted model."""
    return set_runner(
        team,
        role,
        "claude-code",
        binary=str(BINARY),
        model=MODEL,
        home=str(tmp_path / "claude-home"),
        env=model.claude_env(tmp_path / "bin"),
        **more,
    )


async def run_on_a_task(
    client: Client, team: Team, agent: str, runtime: str, title: str, prompt: str
) -> str:
    """Give `agent` a cost ceiling of $0.10, a task of its own claimed, and start its process
    on it; the task's id."""
    found = next(a for a in team.config.agents if a.name == agent)
    found.thresholds = {"cost_ceiling_usd": 0.10}
    task_id = f"{title.lower()}-{agent.rsplit('-', 1)[1]}"
    spec = TaskSpec(id=task_id, title=title, checks=[ShellCheck(command="true")])
    await api.create_task(client, team.task_queue, spec)
    await api.claim_task(client, task_id, agent)
    await api.run_agent(
        client, team.task_queue, agent, runtime, RunRequest(prompt=prompt, task_id=task_id)
    )
    return task_id


async def task_reaches(team: Team, task_id: str, state: TaskState) -> None:
    """Wait until the read model has the task in `state`."""

    async def reached() -> bool:
        record = await team.store.get_task(task_id)
        return record is not None and record.task.state == state

    await eventually(reached, f"task {task_id} to be {state}")
