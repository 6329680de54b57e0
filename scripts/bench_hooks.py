"""Benchmark: every Claude Code hook event through the gateway, as Claude Code sends it.

Starts its own Temporal dev server, PostgreSQL (1,000 tasks in the task table), a worker and the
gateway (in this process, as `tether up` runs them), mints the agent's token, then runs a client
in a separate process, as Claude Code is one: round after round it posts each event's hook input
to the gateway over one kept-alive connection (what a `type: "http"` hook does), and runs the
`tether hook` launcher for the same event (the command fallback: a new process per event, which
forwards to the same gateway). Baselines from the same client, interleaved round by round:

- `GET /health` on the gateway: the HTTP round trip alone;
- a no-op Temporal update to a bare workflow from the client's own SDK connection: the least a
  message that changes state costs.

The goal (issue 14): every event through the gateway p50 <= 30 ms and p99 <= 80 ms.

With `--sandboxed` the same client also runs inside an agent's sandbox (issue 28), as an agent
Tether runs is: its requests go through the sandbox's proxy to the gateway (the SDK baseline is
skipped there: the sandbox reaches no Temporal). The two run in alternating blocks, so that
both meet the same store (it grows with every session) and the same moment of the machine. The
table then adds the sandboxed p50 and p99 and the ratio of the p50s; the goal is p50 within
1.2x, p99 <= 80 ms.

    .venv/bin/python scripts/bench_hooks.py [--rounds 40] [--sandboxed]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio import workflow  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

TASKS = 1000
AGENT = "bench"
# With --sandboxed: the rounds run in this many blocks, plain and sandboxed by turns.
BLOCKS = 3


@workflow.defn(name="BareUpdate")
class BareUpdate:
    """The baseline: a workflow whose update does nothing."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    def noop(self) -> int:
        return 0


def figures(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds; not-a-number when nothing was measured."""
    if not samples:
        return float("nan"), float("nan")
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def transcript_line(i: int, tool_use: str | None = None) -> str:
    from tests.support.model_api import MODEL

    usage = {"input_tokens": 9, "cache_read_input_tokens": 50_000 + i, "output_tokens": 80}
    message: dict[str, Any] = {"id": f"m{i}", "model": MODEL, "usage": usage}
    if tool_use:
        message["content"] = [{"type": "tool_use", "id": tool_use, "name": "Bash", "input": {}}]
    return json.dumps({"type": "assistant", "message": message}) + "\n"


# -- the client (a separate process, as Claude Code is) ------------------------------------------


async def client_main(plan_file: str) -> int:
    from tether.client import connect
    from tether.hook.wire import proxy_for

    plan = json.loads(Path(plan_file).read_text())
    gateway, token, transcript = plan["gateway"], plan["token"], Path(plan["transcript"])
    where = urlsplit(gateway)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    prefix = ""
    through = proxy_for(where)
    conn: http.client.HTTPConnection
    if where.scheme == "https":
        # TLS to the gateway, verified by its certificate; in the sandbox through the proxy's
        # CONNECT tunnel (a byte pipe: the proxy reads nothing of it).
        import ssl

        context = ssl.create_default_context(cafile=plan["ca"])
        if through is None:
            conn = http.client.HTTPSConnection(host, port, timeout=60, context=context)
        else:
            conn = http.client.HTTPSConnection(through[0], through[1], timeout=60, context=context)
            tunnel = {"Proxy-Authorization": through[2]} if through[2] else None
            conn.set_tunnel(host, port, headers=tunnel)
    else:
        # In the sandbox: one kept-alive connection to its proxy, each request in absolute form.
        if through is not None:
            host, port, auth = through[0], through[1], through[2]
            prefix = gateway
            if auth:
                headers["Proxy-Authorization"] = auth
        conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.connect()
    # As Claude Code's HTTP client has it (Node's http sets TCP_NODELAY by default since
    # nodejs/node#42163): http.client writes a request's headers and body in two sends, and
    # with Nagle on, the body waits for the headers' ACK, which the relays of the sandbox's
    # proxy delay by 40 ms on some requests (measured: p50 12 -> 56 ms without this).
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bare = None
    if not plan.get("sandboxed"):
        temporal = await connect(plan["address"], "default")
        bare = temporal.get_workflow_handle("bare")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TETHER_")},
        "TETHER_GATEWAY_URL": gateway,
        **({"TETHER_GATEWAY_CA": plan["ca"]} if plan.get("ca") else {}),
        "TETHER_AGENT_TOKEN": token,
        "TETHER_HOME": plan["home"],
        "CLAUDE_PROJECT_DIR": plan["project"],
    }
    samples: dict[str, list[float]] = {}
    grown = [200]

    def note(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(seconds)

    def post(event: str, body: dict[str, Any]) -> float:
        raw = json.dumps(body).encode()
        t0 = time.perf_counter()
        conn.request("POST", f"{prefix}/hooks/claude-code/{event}?agent={AGENT}", raw, headers)
        response = conn.getresponse()
        answer = response.read()
        took = time.perf_counter() - t0
        if response.status != 200:
            raise SystemExit(f"{event}: HTTP {response.status} {answer[:300]!r}")
        return took

    def command(event: str, body: dict[str, Any]) -> float:
        t0 = time.perf_counter()
        done = subprocess.run(
            [plan["launcher"], event],
            input=json.dumps(body).encode(),
            env=env,
            capture_output=True,
            check=False,
        )
        took = time.perf_counter() - t0
        if done.returncode not in (0, 2) or b"Traceback" in done.stderr:
            raise SystemExit(f"{event} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
        return took

    def payload(event: str, session: str, **fields: object) -> dict[str, Any]:
        base = {
            "hook_event_name": event,
            "session_id": session,
            "transcript_path": str(transcript),
            "cwd": plan["project"],
        }
        return {**base, **fields}

    def grow(tool_use: str) -> None:
        # The call's assistant line, as a working agent writes it before the tool returns.
        with transcript.open("a") as out:
            out.write(transcript_line(grown[0], tool_use))
        grown[0] += 1

    for n in range(plan["first"], plan["first"] + plan["rounds"]):
        t0 = time.perf_counter()
        conn.request("GET", f"{prefix}/health", headers=headers)
        conn.getresponse().read()
        note("GET /health (HTTP round trip)", time.perf_counter() - t0)
        if bare is not None:
            t0 = time.perf_counter()
            await bare.execute_update("noop")
            note("bare no-op update (SDK)", time.perf_counter() - t0)
        for way, send in (("http", post), ("command", command)):
            session = f"bench-{plan['label']}-{way}-{n}"
            start = payload("SessionStart", session, source="startup")
            note(f"{way}: SessionStart (new)", send("SessionStart", start))
            bash = {"tool_name": "Bash", "tool_input": {"command": f"ls {n}"}}
            note(f"{way}: PreToolUse", send("PreToolUse", payload("PreToolUse", session, **bash)))
            use = f"toolu_{way}_{n}_a"
            grow(use)
            ok = payload(
                "PostToolUse",
                session,
                **bash,
                tool_use_id=use,
                tool_response={"stdout": "ok", "stderr": ""},
            )
            note(f"{way}: PostToolUse", send("PostToolUse", ok))
            use = f"toolu_{way}_{n}_b"
            grow(use)
            fail = payload(
                "PostToolUseFailure",
                session,
                tool_name="Bash",
                tool_use_id=use,
                tool_input={"command": f"kubectl get pods -n ns{n}"},
                error=f"Exit code 1\nError from server (NotFound): namespaces ns{n} not found",
            )
            note(f"{way}: PostToolUseFailure", send("PostToolUseFailure", fail))
            compact = payload("PostCompact", session, trigger="manual", compact_summary="s")
            note(f"{way}: PostCompact", send("PostCompact", compact))
            stop = payload("Stop", session, stop_hook_active=False)
            note(f"{way}: Stop (artifact check)", send("Stop", stop))
            end = payload("SessionEnd", session, reason="other")
            note(f"{way}: SessionEnd", send("SessionEnd", end))
            await asyncio.sleep(0.3)  # the ended session's workflow closes before the next
    print(json.dumps(samples))
    return 0


# -- the stack -----------------------------------------------------------------------------------


async def main() -> int:
    from scripts.throwaway import throwaway_stack
    from tether.config import TetherConfig
    from tether.contracts import ShellCheck, TaskSpec, TaskState, TaskView
    from tether.hook.install import install

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=TASKS, help="tasks in the task table")
    parser.add_argument(
        "--sandboxed", action="store_true", help="and again from inside an agent's sandbox"
    )
    parser.add_argument(
        "--tls", action="store_true", help="the gateway serves https (a self-signed certificate)"
    )
    args = parser.parse_args()
    rounds, tasks = args.rounds, args.tasks
    async with throwaway_stack() as stack:
        tmp = stack.folder
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        for i in range(tasks):
            spec = TaskSpec(id=f"t-{i:04d}", title=f"Task {i}", checks=[ShellCheck(command="true")])
            state = TaskState.CLAIMED if i % 3 == 0 else TaskState.OPEN
            view = TaskView(
                spec=spec,
                state=state,
                assignee="other" if i % 3 == 0 else None,
                created_at=now,
                updated_at=now,
            )
            await stack.store.record(view, [])
        repo = tmp / "project"
        repo.mkdir()
        await asyncio.to_thread(subprocess.run, ["git", "init", "-q", str(repo)], check=True)
        config = TetherConfig.model_validate({"agents": [{"name": AGENT}]})
        token = await stack.store.mint_agent_token(AGENT, "founder")
        transcript = tmp / "transcript.jsonl"
        transcript.write_text("".join(transcript_line(i) for i in range(200)))
        home = tmp / "gateway-home"
        tls = None
        if args.tls:
            from tests.support.tls import self_signed

            tls = self_signed(tmp / "tls")
        async with serving(stack, queue, config, home, tls) as url:
            install(repo, AGENT, sys.executable, True, url, "command")
            plan = {
                "gateway": url,
                "token": token,
                "address": stack.address,
                "transcript": str(transcript),
                "home": str(tmp / "agent-home"),
                "project": str(repo),
                "launcher": str(repo / ".claude" / "hooks" / "tether"),
                "label": "plain",
                "ca": str(tls[0]) if tls else None,
            }
            samples: dict[str, list[float]] = {}
            walled: dict[str, list[float]] = {}
            # Sandboxed or not in alternating blocks, so that both meet the same store (it
            # grows with every session) and the same machine.
            blocks = BLOCKS if args.sandboxed else 1
            for block in range(blocks):
                part = {**plan, "first": block * rounds // blocks}
                part["rounds"] = (block + 1) * rounds // blocks - part["first"]
                merge(samples, await run_client(tmp / "plan.json", part))
                if args.sandboxed:
                    part["label"] = "walled"
                    merge(walled, await run_sandboxed_client(tmp, home, part, url))
    print(
        f"rounds: {rounds}; {tasks} tasks in the table; goal: every event through the gateway "
        "p50 <= 30 ms, p99 <= 80 ms"
        + ("; sandboxed p50 within 1.2x" if walled else "")
        + ("; the gateway over https" if args.tls else "")
    )
    more = f" {'sandboxed p50':>14} {'p99':>8} {'ratio':>6}" if walled else ""
    print(f"{'':36} {'p50 ms':>8} {'p99 ms':>8}{more}")
    for name, values in samples.items():
        p50, p99 = figures(values)
        line = f"{name:36} {p50:8.1f} {p99:8.1f}"
        if name in walled:
            w50, w99 = figures(walled[name])
            line += f" {w50:14.1f} {w99:8.1f} {w50 / p50:6.2f}"
        print(line)
    return 0


@asynccontextmanager
async def serving(
    stack: Any,
    queue: str,
    config: Any,
    home: Path,
    tls: tuple[Path, Path] | None = None,
    gateway: bool = True,
) -> AsyncIterator[str]:
    """A worker and the gateway on `stack`, in this process as `tether up` runs them, and the
    baseline's bare workflow (id `bare`); yields the gateway's URL. Without `gateway`, the
    worker (configured from the stack's tether.toml when `config` is None) and the bare
    workflow only; yields ""."""
    from tether.config import load_config
    from tether.gateway.server import listening
    from worker import build_worker

    client = stack.client
    if config is None:
        config = load_config(stack.folder / "tether.toml")
    async with contextlib.AsyncExitStack() as running:
        await running.enter_async_context(
            build_worker(client, queue, stack.store, config, stack.keys)
        )
        await running.enter_async_context(
            Worker(
                client,
                task_queue=f"{queue}-bare",
                workflows=[BareUpdate],
                workflow_runner=UnsandboxedWorkflowRunner(),
            )
        )
        url = ""
        if gateway:
            url = await running.enter_async_context(
                listening(
                    client, stack.store, config, queue, home, "127.0.0.1:0", stack.gateway, tls
                )
            )
        bare = await client.start_workflow(BareUpdate.run, id="bare", task_queue=f"{queue}-bare")
        try:
            yield url
        finally:
            await bare.terminate()


def merge(into: dict[str, list[float]], samples: dict[str, list[float]]) -> None:
    for name, values in samples.items():
        into.setdefault(name, []).extend(values)


async def run_client(plan_file: Path, plan: dict[str, Any]) -> dict[str, list[float]]:
    """Run the client process and read its samples."""
    plan_file.write_text(json.dumps(plan))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        str(plan_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return await samples_of(proc)


async def samples_of(proc: asyncio.subprocess.Process) -> dict[str, list[float]]:
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the client failed: {err.decode()[-2000:]}")
    samples: dict[str, list[float]] = json.loads(out.decode().strip().splitlines()[-1])
    return samples


async def run_sandboxed_client(
    tmp: Path, home: Path, plan: dict[str, Any], gateway: str
) -> dict[str, list[float]]:
    """The same client in an agent's sandbox, as the runner builds it: its project is its
    worktree, its transcript in its own home (where the gateway reads it)."""
    from tether.ops import sandbox

    own = home / "agents" / AGENT
    own.mkdir(parents=True, exist_ok=True)
    transcript = own / "transcript.jsonl"
    transcript.write_text(Path(plan["transcript"]).read_text())
    inside = {**plan, "sandboxed": True, "transcript": str(transcript), "home": str(own)}
    plan_file = own / "plan.json"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    walls = sandbox.walls(
        agent=AGENT,
        runtime="command",
        worktree=Path(plan["project"]),
        home=own,
        tether_home=home,
        gateway_url=gateway,
        repositories=[],
        network=[],
        env=env,
        secret_names=[],
        gateway_ca=Path(plan["ca"]) if plan.get("ca") else None,
    )
    argv = [sys.executable, __file__, "--client", str(plan_file)]
    plan_file.write_text(json.dumps(inside))
    launcher = await sandbox.start_launcher(
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        await launcher.send(sandbox.prepare(walls, argv, Path(plan["project"]), env))
        return await samples_of(launcher.process)
    finally:
        launcher.done()


if __name__ == "__main__":
    from tether.ops.runtime import run_and_exit

    if len(sys.argv) == 3 and sys.argv[1] == "--client":
        run_and_exit(client_main(sys.argv[2]))
    else:
        run_and_exit(main())
