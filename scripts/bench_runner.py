"""Benchmark: agents Tether runs itself (issue 15), with the pinned Claude Code CLI against the
scripted Messages API, on a throwaway stack (Temporal dev server, PostgreSQL, a worker and the
gateway in this process).

1. Hold -> process gone. Each round a fresh agent is started with `tether run` on a task whose
   kubectl call fails the same way every time; the anti-loop governor holds it at the fifth
   failure. Measured: from the hold (the governor's `since`, the workflow's clock) to the moment
   the agent's process is no longer in /proc (watched every 5 ms), p50 and p99; and the model
   requests made after the hold (goal: 0 beyond the one in flight).
2. Runner overhead. The same scripted five-step conversation, interleaved round by round:
   - bare `claude -p` with no hooks;
   - bare `claude -p` with Tether's hooks to the gateway (what governance costs without the
     runner: the baseline the goal is measured against);
   - `tether run` from the request to the process's end as the session records it (the runner:
     session start, worktree, token, supervision, and the same hooks).
   Goal: the runner <= 1.2x the bare run with hooks.

    .venv/bin/python scripts/bench_runner.py [--rounds 5] [--holds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORBIDDEN = "Error from server (Forbidden): deployments.apps is forbidden"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def make_repo(repo: Path) -> None:
    """The agents' repository, with the infra folder the kubectl retries cd into."""
    who = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x.invalid"}
    who |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x.invalid"}
    (repo / "infra").mkdir()
    (repo / "infra" / "api.yaml").write_text("kind: Deployment\n")
    for argv in (
        ["git", "init", "-q", "-b", "main", str(repo)],
        ["git", "-C", str(repo), "add", "-A"],
        ["git", "-C", str(repo), "commit", "-q", "-m", "start"],
    ):
        subprocess.run(argv, check=True, env={**os.environ, **who})


def wait_gone(text: str) -> None:
    while alive_with(text):
        time.sleep(0.005)


def alive_with(text: str) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if text in cmdline and (entry / "stat").read_text().split()[2] != "Z":
                return True
        except OSError:
            continue
    return False


async def main() -> int:
    from scripts.throwaway import throwaway_stack
    from tests.support.claude_code import BINARY, ensure_claude_code
    from tests.support.model_api import MODEL, ModelApi, Turn
    from tests.support.payloads import KUBECTL_RETRIES
    from tether.config import AgentRunner, Settings, TetherConfig
    from tether.gateway.server import listening
    from tether.hook.install import install
    from worker import build_worker

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--holds", type=int, default=8)
    args = parser.parse_args()
    ensure_claude_code()

    async with throwaway_stack() as stack:
        client, tmp = stack.client, stack.folder
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        repo = tmp / "app"
        repo.mkdir()
        await asyncio.to_thread(make_repo, repo)
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        (bin_dir / "kubectl").write_text(f"#!/bin/sh\necho '{FORBIDDEN}' >&2\nexit 1\n")
        (bin_dir / "kubectl").chmod(0o755)
        claude_home = tmp / "claude-home"
        claude_home.mkdir()

        holds = [f"hold-{i}" for i in range(args.holds)]
        config = TetherConfig.model_validate(
            {
                "repositories": {"app": {"path": str(repo)}},
                "agents": [{"name": n, "repositories": ["app"]} for n in [*holds, "steady"]],
            }
        )
        state: dict[str, Any] = {"script": None}

        def script(n: int, request: Any) -> Turn:
            return state["script"](n, request)  # type: ignore[no-any-return]

        with ModelApi(script) as model:
            env = model.claude_env(bin_dir)
            runner = AgentRunner(binary=str(BINARY), model=MODEL, env=env, home=str(claude_home))
            for agent in config.agents:
                agent.run = runner
            home = tmp / "gateway-home"
            async with listening(
                client, stack.store, config, queue, home, "127.0.0.1:0", stack.gateway
            ) as url:
                settings = Settings(home=tmp / "tether-home", gateway_url=url)
                async with build_worker(client, queue, stack.store, config, stack.keys, settings):
                    gone, after = await holds_bench(
                        client, stack, queue, holds, model, state, KUBECTL_RETRIES
                    )
                    times = await overhead_bench(
                        client,
                        stack,
                        queue,
                        model,
                        state,
                        env,
                        claude_home,
                        url,
                        tmp,
                        args.rounds,
                        install,
                    )
    print(f"Hold -> process gone ({len(gone)} holds, the real CLI):")
    print(f"  p50 {statistics.median(gone) * 1000:.0f} ms, p99 {pct(gone, 0.99) * 1000:.0f} ms")
    print(f"  model requests after the hold: {after} in all (goal: 0 beyond the one in flight)")
    print(f"Runner overhead (a five-step scripted conversation, {args.rounds} rounds, p50):")
    base = statistics.median(times["hooks"])
    for name, label in (
        ("bare", "bare claude -p, no hooks"),
        ("hooks", "bare claude -p, Tether's hooks"),
        ("run", "tether run, request to process end"),
    ):
        p50 = statistics.median(times[name])
        print(f"  {label:<38} {p50:6.2f} s   {p50 / base:4.2f}x")
    ratio = statistics.median(times["run"]) / base
    verdict = "met" if ratio <= 1.2 else "NOT met"
    print(f"  goal: the runner <= 1.20x the bare run with hooks: {verdict}")
    return 0


async def holds_bench(
    client: Any,
    stack: Any,
    queue: str,
    agents: list[str],
    model: Any,
    state: dict[str, Any],
    retries: list[str],
) -> tuple[list[float], int]:
    from tests.support.model_api import Turn, Usage
    from tether import client as api
    from tether.contracts import RunRequest, ShellCheck, TaskSpec

    gone: list[float] = []
    after = 0
    for agent in agents:
        asked = {"n": 0}

        def loop(n: int, request: Any, asked: dict[str, int] = asked) -> Turn:
            asked["n"] += 1
            if asked["n"] <= len(retries) + 1:
                command = retries[min(asked["n"], len(retries)) - 1]
                return Turn.bash(command, Usage(20_000, 40))
            return Turn.say("giving up")

        state["script"] = loop
        task = f"t-{agent}"
        await api.create_task(
            client, queue, TaskSpec(id=task, title=task, checks=[ShellCheck(command="true")])
        )
        await api.claim_task(client, task, agent)
        view = await api.run_agent(
            client, queue, agent, "claude-code", RunRequest(prompt="Roll it out.", task_id=task)
        )
        assert view.run is not None
        session = view.run.runtime_session
        deadline = time.monotonic() + 120
        hold_at = None
        while time.monotonic() < deadline:
            current = await api.session_view(client, agent)
            if current is not None and current.governor.hold is not None:
                hold_at = current.governor.hold.since
                break
            await asyncio.sleep(0.05)
        if hold_at is None:
            raise SystemExit(f"{agent}: no hold within 120 s")
        await asyncio.to_thread(wait_gone, session)
        gone_at = datetime.now(UTC)
        gone.append(max((gone_at - hold_at).total_seconds(), 0.0))
        after += max(asked["n"] - len(retries), 0)
    return gone, after


async def overhead_bench(
    client: Any,
    stack: Any,
    queue: str,
    model: Any,
    state: dict[str, Any],
    env: dict[str, str],
    claude_home: Path,
    url: str,
    tmp: Path,
    rounds: int,
    install: Any,
) -> dict[str, list[float]]:
    from tests.support.claude_code import BINARY
    from tests.support.model_api import MODEL, Turn, Usage
    from tether import client as api
    from tether.contracts import RunRequest

    counter = {"n": 0}

    def conversation(n: int, request: Any) -> Turn:
        counter["n"] += 1
        step = counter["n"]
        if step <= 5:
            return Turn.bash(f"echo step {step}", Usage(10_000 + step * 1000, 30))
        return Turn.say("Done.", Usage(16_000, 10))

    plain = tmp / "plain"
    hooked = tmp / "hooked"
    for folder in (plain, hooked):
        folder.mkdir()
        await asyncio.to_thread(subprocess.run, ["git", "init", "-q", str(folder)], check=True)
    token = await stack.store.mint_agent_token("steady", "founder")
    install(hooked, "steady", sys.executable, True, url)
    times: dict[str, list[float]] = {"bare": [], "hooks": [], "run": []}

    async def bare(folder: Path, with_hooks: bool) -> float:
        counter["n"] = 0
        state["script"] = conversation
        extra = {"TETHER_GATEWAY_URL": url, "TETHER_AGENT_TOKEN": token} if with_hooks else {}
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            str(BINARY),
            "-p",
            "Work through the steps.",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "bypassPermissions",
            "--model",
            MODEL,
            cwd=folder,
            env={**env, "HOME": str(claude_home), **extra},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()
        return time.monotonic() - started

    for _ in range(rounds):
        times["bare"].append(await bare(plain, False))
        # The hooks need an open session of "steady": the SessionStart hook starts one, and
        # `claude -p`'s SessionEnd ends it.
        times["hooks"].append(await bare(hooked, True))
        counter["n"] = 0
        state["script"] = conversation
        started = time.monotonic()
        view = await api.run_agent(
            client, queue, "steady", "claude-code", RunRequest(prompt="Work through the steps.")
        )
        while True:
            current = await api.session_view(client, "steady")
            run = current.run if current is not None else None
            same = current is not None and current.started_at == view.started_at
            if same and run is not None and run.phase == "finished":
                break
            await asyncio.sleep(0.02)
        times["run"].append(time.monotonic() - started)
    return times


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
