"""Benchmark: the gateway under a team's hook traffic (issue 29).

On a throwaway embedded stack, one process runs a worker and the gateway together, as `tether
up` does; a second process (as the agents' runtimes are) sends, over HTTP hooks:
- `--agents` agents (default 50), each started with SessionStart, then in a loop for
  `--seconds`: PreToolUse, then PostToolUse (a report, its transcript growing), then a pause
  (`--pause`, default 1 s: a tool call a second per agent);
- a third of the way in, `--starting` other agents (default 10) start their sessions at once:
  SessionStart holds its request for the whole startup (credential probes, the brief).

Prints p50 and p99 of PreToolUse over the whole run and while the sessions were starting, of
PostToolUse and SessionStart, and the requests refused or failed (a non-200, or a hook answered
with Tether's "unreachable" line: capacity the gateway did not have). Baselines in the same run,
before the load: a bare HTTP round trip (`GET /health`) and a bare no-op update.

The goal: PreToolUse p50 <= 30 ms and p99 <= 100 ms under this load, no request refused.

With `--split`, the gateway is a process of its own (`tether gateway`, as on a cluster) beside
the worker, instead of sharing the worker's process (and its one interpreter) as `tether up`
runs them.

    .venv/bin/python scripts/bench_gateway_load.py [--agents 50] [--starting 10] [--seconds 40]
                                                   [--split]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# The same baselines and transcript lines as the single-agent hook benchmark.
from scripts.bench_hooks import figures, serving, transcript_line  # noqa: E402


def append(path: Path, line: str) -> None:
    """The runtime writes the tool call's line to its transcript (a small local write)."""
    with path.open("a") as out:
        out.write(line)


# -- the agents (a separate process, as their runtimes are) --------------------------------------


async def agents_main(plan_file: str) -> int:
    import httpx

    from tether.client import connect

    plan = json.loads(Path(plan_file).read_text())
    gateway = plan["gateway"]
    samples: dict[str, list[float]] = {}
    failed: list[str] = []
    starting = [False]

    def note(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(seconds)

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=gateway, timeout=120, limits=limits) as http:

        async def hook(agent: str, event: str, body: dict[str, Any]) -> float:
            headers = {"Authorization": f"Bearer {plan['tokens'][agent]}"}
            t0 = time.perf_counter()
            answer = await http.post(
                f"/hooks/claude-code/{event}", params={"agent": agent}, json=body, headers=headers
            )
            took = time.perf_counter() - t0
            text = answer.text
            if (
                answer.status_code != 200
                or "unreachable" in text
                or answer.headers.get("x-tether-trouble")
            ):
                failed.append(f"{event} {agent}: HTTP {answer.status_code} {text[:200]}")
            return took

        def payload(agent: str, event: str, **fields: object) -> dict[str, Any]:
            return {
                "hook_event_name": event,
                "session_id": f"cc-{agent}",
                "transcript_path": plan["transcripts"][agent],
                "cwd": plan["project"],
                **fields,
            }

        async def start(agent: str) -> None:
            body = payload(agent, "SessionStart", source="startup")
            note("SessionStart", await hook(agent, "SessionStart", body))

        # Baselines, before the load.
        temporal = await connect(plan["address"], "default")
        bare = temporal.get_workflow_handle("bare")
        for _ in range(30):
            t0 = time.perf_counter()
            await http.get("/health")
            note("GET /health (quiet)", time.perf_counter() - t0)
            t0 = time.perf_counter()
            await bare.execute_update("noop")
            note("bare no-op update (quiet)", time.perf_counter() - t0)

        gate = asyncio.Semaphore(10)

        async def started(agent: str) -> None:
            async with gate:
                await start(agent)

        await asyncio.gather(*(started(a) for a in plan["agents"]))
        deadline = time.perf_counter() + plan["seconds"]

        async def work(agent: str, offset: float) -> None:
            await asyncio.sleep(offset)
            n = 0
            path = Path(plan["transcripts"][agent])
            while time.perf_counter() < deadline:
                bash = {"tool_name": "Bash", "tool_input": {"command": f"ls {n}"}}
                took = await hook(agent, "PreToolUse", payload(agent, "PreToolUse", **bash))
                note("PreToolUse", took)
                if starting[0]:
                    note("PreToolUse while sessions start", took)
                use = f"toolu_{agent}_{n}"
                append(path, transcript_line(1000 + n, use))
                done = payload(
                    agent,
                    "PostToolUse",
                    **bash,
                    tool_use_id=use,
                    tool_response={"stdout": "ok", "stderr": ""},
                )
                note("PostToolUse (report)", await hook(agent, "PostToolUse", done))
                n += 1
                await asyncio.sleep(plan["pause"])

        async def newcomers() -> None:
            await asyncio.sleep(plan["seconds"] / 3)
            starting[0] = True
            try:
                await asyncio.gather(*(start(a) for a in plan["starting"]))
            finally:
                starting[0] = False

        spread = plan["pause"]
        await asyncio.gather(
            *(work(a, spread * i / len(plan["agents"])) for i, a in enumerate(plan["agents"])),
            newcomers(),
        )
    print(json.dumps({"samples": samples, "failed": failed}))
    return 0


# -- the stack ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def gateway_process(stack: Any, queue: str, toml: str) -> AsyncIterator[str]:
    """The worker in this process, the gateway in its own (`tether gateway`), as on a cluster;
    yields the gateway's URL."""
    from tether.ops.stack import free_port

    bind = f"127.0.0.1:{free_port()}"
    env = stack.worker_env(queue, TETHER_GATEWAY_BIND=bind)
    (stack.folder / "tether.toml").write_text(toml)
    async with serving(stack, queue, None, stack.folder / "unused", gateway=False):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tether", "gateway", env=env, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if b"listening on" not in line:
                raise SystemExit(f"the gateway did not start: {line!r}")
            yield f"http://{bind}"
        finally:
            proc.terminate()
            await proc.wait()


async def main() -> int:
    from scripts.throwaway import throwaway_stack
    from tether.config import TetherConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--starting", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--pause", type=float, default=1.0)
    parser.add_argument("--split", action="store_true", help="the gateway in its own process")
    args = parser.parse_args()
    async with throwaway_stack() as stack:
        tmp = stack.folder
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        repo = tmp / "project"
        repo.mkdir()
        await asyncio.to_thread(subprocess.run, ["git", "init", "-q", str(repo)], check=True)
        agents = [f"agent-{i:02d}" for i in range(args.agents)]
        starters = [f"newcomer-{i:02d}" for i in range(args.starting)]
        config = TetherConfig.model_validate({"agents": [{"name": a} for a in agents + starters]})
        tokens, transcripts = {}, {}
        for agent in agents + starters:
            tokens[agent] = await stack.store.mint_agent_token(agent, "founder")
            path = tmp / "transcripts" / f"{agent}.jsonl"
            path.parent.mkdir(exist_ok=True)
            path.write_text("".join(transcript_line(i) for i in range(50)))
            transcripts[agent] = str(path)
        home = tmp / "gateway-home"
        names = agents + starters
        toml = "".join(f'[[agents]]\nname = "{a}"\n' for a in names)
        serve = (
            gateway_process(stack, queue, toml)
            if args.split
            else serving(stack, queue, config, home)
        )
        async with serve as url:
            plan = {
                "gateway": url,
                "address": stack.address,
                "tokens": tokens,
                "transcripts": transcripts,
                "project": str(repo),
                "agents": agents,
                "starting": starters,
                "seconds": args.seconds,
                "pause": args.pause,
            }
            plan_file = Path(tempfile.mkdtemp(prefix="bench-load-")) / "plan.json"
            plan_file.write_text(json.dumps(plan))
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--agents-of",
                str(plan_file),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the agents failed: {err.decode()[-2000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    print(
        f"{args.agents} agents, a tool call every {args.pause:g} s each, for {args.seconds:g} s; "
        f"{args.starting} sessions start a third of the way in. "
        "Goal: PreToolUse p50 <= 30 ms, p99 <= 100 ms, nothing refused."
    )
    print(f"{'':34} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in result["samples"].items():
        p50, p99 = figures(values)
        print(f"{name:34} {len(values):6d} {p50:8.1f} {p99:8.1f}")
    print(f"refused or failed: {len(result['failed'])}")
    for line in result["failed"][:5]:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    from tether.ops.runtime import run_and_exit

    if len(sys.argv) == 3 and sys.argv[1] == "--agents-of":
        run_and_exit(agents_main(sys.argv[2]))
    else:
        run_and_exit(main())
