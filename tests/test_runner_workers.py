"""A worker killed mid-run (issue 15): the agent's process dies with it, so nothing runs
unwatched, and the run resumes on another worker of the same queue. Real worker.py processes,
killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path

from temporalio.client import Client

from tests.support import keys
from tests.support.helpers import eventually
from tether import client as api
from tether.contracts import RunRequest, SessionView
from tether.errors import TetherError

ROOT = Path(__file__).resolve().parent.parent

AGENT_PROGRAM = """
import os, pathlib, sys, time
starts = pathlib.Path(sys.argv[1])
before = starts.read_text().split() if starts.exists() else []
starts.write_text(" ".join([*before, str(os.getpid())]))
if not before:
    time.sleep(300)  # the first process is still working when its worker is killed
print("done")
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False


async def start_worker(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "worker.py"),
        env=env,
        stdout=log.open("w"),
        stderr=asyncio.subprocess.STDOUT,
    )
    await eventually(lambda: "worker polling" in log.read_text(), str(log), 30)
    return proc


async def test_a_worker_killed_mid_run_leaves_no_agent_running_and_the_run_resumes_elsewhere(
    client: Client, temporal_address: str, fresh_db: str, tmp_path: Path
) -> None:
    queue = f"runs-{uuid.uuid4().hex[:8]}"
    agent = f"runner-{uuid.uuid4().hex[:6]}"
    starts = tmp_path / "starts"
    program = tmp_path / "agent.py"
    program.write_text(AGENT_PROGRAM)
    config = tmp_path / "tether.toml"
    command = json.dumps([sys.executable, str(program), str(starts)])
    # The program's pids are read from the host (the sandbox would give it its own).
    config.write_text(
        f'[[agents]]\nname = "{agent}"\nruntime = "command"\nisolation = "none"\n'
        f"[agents.run]\ncommand = {command}\nrestart_backoff_seconds = 0.1\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TETHER_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=fresh_db,
        TETHER_TASK_QUEUE=queue,
        TETHER_HOME=str(keys.write(tmp_path / "home")),
        TETHER_CONFIG=str(config),
    )
    first = await start_worker(env, tmp_path / "worker1.log")
    second: asyncio.subprocess.Process | None = None
    try:
        view = await api.run_agent(client, queue, agent, "command", RunRequest(prompt="go"))
        assert view.run is not None
        await eventually(starts.exists, "the agent's first process")
        (pid,) = (int(p) for p in starts.read_text().split())
        assert alive(pid)

        second = await start_worker(env, tmp_path / "worker2.log")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        # The agent's process dies with the worker that ran it (nothing runs unwatched) ...
        await eventually(lambda: not alive(pid), "the orphaned agent process to die", 10)

        # ... and the run resumes on the other worker once the lost one's heartbeat times out.
        async def finished() -> SessionView | None:
            try:
                current = await api.session_view(client, agent)
            except TetherError:
                # The session was cached on the killed worker: until Temporal sees its sticky
                # queue has no poller, a query can time out ("context canceled").
                return None
            run = current.run if current else None
            return current if run is not None and run.phase == "finished" else None

        done = await eventually(finished, "the run to finish on the second worker", 60)
        assert done.run is not None and done.run.attempts == 2
        last = done.run.last
        assert last is not None and last.exit_code == 0 and not last.is_error
        assert len(starts.read_text().split()) == 2
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), timeout=60)
