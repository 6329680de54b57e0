"""`tether up` as a founder runs it: the whole stack from nothing, Ctrl-C, and a second run that
finds its earlier state."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.cli import TETHER, cli
from tether.ops.stack import free_port, port_in_use


class Stack:
    def __init__(self, proc: asyncio.subprocess.Process, banner: str) -> None:
        self.proc = proc
        self.banner = banner

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.proc.wait(), timeout=60)


async def start_up(env: dict[str, str]) -> Stack:
    proc = await asyncio.create_subprocess_exec(
        *TETHER, "up", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    seen: list[str] = []
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=120)
        if not line:
            raise AssertionError(f"tether up ended early:\n{''.join(seen)}")
        seen.append(line.decode())
        if "Press Ctrl-C to stop" in seen[-1]:
            return Stack(proc, "".join(seen))


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.fixture
async def stack(up_env: dict[str, str]) -> AsyncIterator[Stack]:
    stack = await start_up(up_env)
    try:
        yield stack
    finally:
        if stack.proc.returncode is None:
            await stack.stop()


KEY_ROLES = ("founder", "gateway", "worker")


def _gateway_processes(home: Path) -> list[int]:
    """The `tether gateway` processes serving the stack under `home`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if b"gateway" in argv and f"TETHER_HOME={home}".encode() in environ:
            found.append(int(proc.name))
    return found


async def test_up_runs_the_stack_stops_cleanly_and_keeps_state(
    stack: Stack, up_env: dict[str, str]
) -> None:
    ui_port = up_env["TETHER_UI_PORT"]
    assert f"Web UI:     http://localhost:{ui_port}" in stack.banner
    assert "PostgreSQL: postgresql://" in stack.banner
    assert "Sandbox:    agents run sandboxed" in stack.banner
    # The embedded PostgreSQL's password is in a file of its own (mode 600), never in stack.json
    # or the banner; the CLI below reads it from there.
    home = Path(up_env["TETHER_HOME"])
    secret = home / "postgres.password"
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    password = secret.read_text().strip()
    assert password not in stack.banner
    assert password not in (home / "stack.json").read_text()

    # The CLI finds the running stack through TETHER_HOME, with no addresses set.
    code, out, err = await cli(
        up_env,
        "task",
        "create",
        "--id",
        "kept",
        "--title",
        "Survives a restart",
        "--shell",
        "exit 1",
    )
    assert code == 0, err
    code, _, err = await cli(up_env, "task", "claim", "kept", "--agent", "coder")
    assert code == 0, err

    # The gateway is up, with the keys `tether up` made; an agent with only its token and the
    # gateway's URL (no Temporal, no database, no TETHER_HOME of the stack) claims for itself.
    home = Path(up_env["TETHER_HOME"])
    assert all(oct((home / f"{r}.key").stat().st_mode & 0o777) == "0o600" for r in KEY_ROLES)
    gateway = json.loads((home / "stack.json").read_text())["gateway_url"]
    assert f"Gateway:    {gateway}" in stack.banner
    assert await asyncio.to_thread(get_json, f"{gateway}/health") == {"ok": True}
    code, out, err = await cli(up_env, "agent", "token", "coder")
    assert code == 0, err
    token = next(line for line in out.splitlines() if line.startswith("tether_agent_"))
    agent_env = {k: v for k, v in up_env.items() if not k.startswith(("TETHER_", "TEMPORAL_"))}
    agent_env.update(
        TETHER_HOME=str(home.parent / "agent-home"),
        TETHER_GATEWAY_URL=gateway,
        TETHER_AGENT_TOKEN=token,
        TEMPORAL_ADDRESS="127.0.0.1:1",  # unreachable: the agent must not need Temporal
    )
    code, _, err = await cli(
        up_env, "task", "create", "--id", "mine", "--title", "t", "--shell", "true"
    )
    assert code == 0, err
    code, out, err = await cli(agent_env, "task", "claim", "mine", "--agent", "coder")
    assert code == 0 and "task mine is claimed by coder" in out, err
    code, _, err = await cli(agent_env, "task", "claim", "mine", "--agent", "devops")
    assert code == 2 and "this token is agent coder's; it cannot speak for agent devops" in err

    # The Web UI lists the task's workflow.
    listing = await asyncio.to_thread(
        get_json, f"http://127.0.0.1:{ui_port}/api/v1/namespaces/default/workflows"
    )
    ids = [e["execution"]["workflowId"] for e in listing["executions"]]  # type: ignore[attr-defined]
    assert "task-kept" in ids

    # The gateway is a process of its own, and the database's password is not in its
    # environment (it reads it from the file).
    pids = _gateway_processes(home)
    assert len(pids) == 1, pids
    assert password.encode() not in Path(f"/proc/{pids[0]}/environ").read_bytes()

    # A second `tether up` on the same ports says what to do in one line.
    code, _, err = await cli(up_env, "up")
    assert code == 2 and err.count("\n") == 1 and "already in use" in err

    assert await stack.stop() == 0
    for name in ("TETHER_TEMPORAL_PORT", "TETHER_UI_PORT", "TETHER_POSTGRES_PORT"):
        assert not port_in_use(int(up_env[name])), f"{name} still bound after Ctrl-C"
    gateway_port = int(up_env["TETHER_GATEWAY_BIND"].rpartition(":")[2])
    assert not port_in_use(gateway_port) and not _gateway_processes(home)
    assert not (Path(up_env["TETHER_HOME"]) / "stack.json").exists()

    again = await start_up(up_env)
    try:
        code, out, err = await cli(up_env, "task", "show", "kept", "--json")
        assert code == 0, err
        assert json.loads(out)["task"]["assignee"] == "coder"
        code, out, _ = await cli(up_env, "task", "submit", "kept", "--agent", "coder")
        assert code == 1 and "expected exit code 0, got 1" in out
    finally:
        assert await again.stop() == 0


async def test_up_refuses_an_invalid_config_before_starting_anything(
    up_env: dict[str, str],
) -> None:
    home = Path(up_env["TETHER_HOME"])
    home.mkdir(parents=True)
    (home / "tether.toml").write_text("[thresholds]\nloop_limit = 0\n")
    code, _, err = await cli(up_env, "up")
    assert code == 2 and "thresholds.loop_limit" in err
    assert not port_in_use(int(up_env["TETHER_TEMPORAL_PORT"]))


async def test_up_uses_external_servers_when_told(
    up_env: dict[str, str], temporal_address: str, fresh_db: str
) -> None:
    # The suite's PostgreSQL asks for its password: the URL carries the real one.
    password = urlsplit(fresh_db).password
    assert password
    env = {
        **up_env,
        "TEMPORAL_ADDRESS": temporal_address,
        "DATABASE_URL": fresh_db,
        "TETHER_TASK_QUEUE": "external-up",
    }
    stack = await start_up(env)
    try:
        assert f"Temporal:   {temporal_address}" in stack.banner
        assert password not in stack.banner
        assert f"PostgreSQL: {fresh_db.replace(f':{password}@', ':***@')}" in stack.banner
        stack_json = (Path(up_env["TETHER_HOME"]) / "stack.json").read_text()
        assert password not in stack_json
        # Nothing embedded was started.
        assert not port_in_use(int(up_env["TETHER_UI_PORT"]))
        assert not port_in_use(int(up_env["TETHER_POSTGRES_PORT"]))
        assert not (Path(up_env["TETHER_HOME"]) / "postgres").exists()
        code, out, err = await cli(
            env, "task", "create", "--id", f"ext-{free_port()}", "--title", "x", "--shell", "true"
        )
        assert code == 0 and "created task" in out, err
    finally:
        assert await stack.stop() == 0
