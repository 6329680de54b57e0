"""Agents Tether runs itself, in tests: their `[agents.run]` as tether.toml would say it, and
what is left of their processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client

from tests.support.claude_code import BINARY
from tests.support.model_api import MODEL, ModelApi
from tests.support.sessions import Team
from tether import client as api
from tether.config import AgentRunner
from tether.contracts import SessionView


def set_runner(team: Team, role: str, runtime: str, **run: Any) -> str:
    """The agent's `[agents.run]`, as tether.toml would say it (the worker reads it live)."""
    agent = next(a for a in team.config.agents if a.name == team.agent(role))
    agent.runtime = runtime
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

    return await eventually(reached, what, seconds=seconds)


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
        env={
            "PATH": f"{tmp_path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin",
            "ANTHROPIC_BASE_URL": model.url,
            "ANTHROPIC_API_KEY": "sk-ant-test-dummy",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "IS_SANDBOX": "1",
        },
        **more,
    )
