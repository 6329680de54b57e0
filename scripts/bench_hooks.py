"""Benchmark: the wall time of each Claude Code hook event, process start included.

Starts its own Temporal dev server, PostgreSQL (1,000 tasks in the task table) and worker, then
runs the `tether hook claude-code EVENT` launcher the way Claude Code does (a new process, JSON
on stdin) for every event `tether hooks install` registers, and prints p50/p99 per event next to
two baselines measured in the same run, interleaved round by round:

- `python -c pass`: a new Python process doing nothing;
- a bare HTTP update: a new Python process posting one no-op update to a bare workflow through
  Temporal's HTTP API (the least a hook that changes state can cost).

The goal (issue 12) is 150 ms p50 for every event on this machine.

    .venv/bin/python scripts/bench_hooks.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio import workflow  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from scripts.throwaway import throwaway_stack  # noqa: E402
from tests.support.model_api import MODEL  # noqa: E402
from tether.config import TetherConfig  # noqa: E402
from tether.contracts import ShellCheck, TaskSpec, TaskState, TaskView  # noqa: E402
from tether.hook.install import install  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from worker import build_worker  # noqa: E402

TASKS = 1000
AGENT = "bench"


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


BARE_UPDATE = """
import json, sys, urllib.request, uuid
url = sys.argv[1]
body = {"request": {"meta": {"updateId": str(uuid.uuid4())}, "input": {"name": "noop"}},
        "waitPolicy": {"lifecycleStage": "UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED"}}
req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                             headers={"Content-Type": "application/json"})
json.loads(urllib.request.urlopen(req, timeout=10).read())
"""


def timed(argv: list[str], stdin: bytes, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode not in ok or b"Traceback" in done.stderr:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()[-800:]}")
    return elapsed


def figures(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def transcript_line(i: int) -> str:
    usage = {"input_tokens": 9, "cache_read_input_tokens": 50_000 + i, "output_tokens": 80}
    message = {"id": f"m{i}", "model": MODEL, "usage": usage}
    return json.dumps({"type": "assistant", "message": message}) + "\n"


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=TASKS, help="tasks in the task table")
    args = parser.parse_args()
    rounds, tasks = args.rounds, args.tasks
    async with throwaway_stack(http_api=True) as stack:
        client, tmp = stack.client, stack.folder
        assert stack.http_url is not None
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
        install(repo, AGENT, sys.executable, True, stack.http_url)
        launcher = str(repo / ".claude" / "hooks" / "tether")
        config = TetherConfig.model_validate({"agents": [{"name": AGENT}]})
        bare_queue = f"{queue}-bare"
        async with (
            build_worker(client, queue, stack.store, config),
            Worker(
                client,
                task_queue=bare_queue,
                workflows=[BareUpdate],
                workflow_runner=UnsandboxedWorkflowRunner(),
            ),
        ):
            bare = await client.start_workflow(BareUpdate.run, id="bare", task_queue=bare_queue)
            bare_url = f"{stack.http_url}/api/v1/namespaces/default/workflows/bare/update/noop"
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("TETHER_")},
                "TETHER_TASK_QUEUE": queue,
                "TETHER_HOME": str(tmp / "home"),
                "CLAUDE_PROJECT_DIR": str(repo),
            }
            transcript = tmp / "transcript.jsonl"
            transcript.write_text("".join(transcript_line(i) for i in range(200)))
            grown = [200]

            def payload(event: str, session: str, **fields: object) -> bytes:
                base = {
                    "hook_event_name": event,
                    "session_id": session,
                    "transcript_path": str(transcript),
                    "cwd": str(repo),
                }
                return json.dumps({**base, **fields}).encode()

            def hook(event: str, body: bytes, ok: tuple[int, ...] = (0,)) -> float:
                return timed([launcher, event], body, env, ok)

            def grow() -> None:
                # One new assistant message per tool call, as a working agent writes.
                with transcript.open("a") as out:
                    out.write(transcript_line(grown[0]))
                grown[0] += 1

            samples: dict[str, list[float]] = {}

            def sample(name: str, measure: Callable[[], float]) -> None:
                samples.setdefault(name, []).append(measure())

            def one_round(n: int) -> None:
                session = f"bench-{n}"
                sample("python -c pass", lambda: timed([sys.executable, "-c", "pass"], b"", env))
                sample(
                    "bare HTTP update (new process)",
                    lambda: timed([sys.executable, "-c", BARE_UPDATE, bare_url], b"", env),
                )
                start = payload("SessionStart", session, source="startup")
                sample("SessionStart (new session)", lambda: hook("SessionStart", start))
                bash = {"tool_name": "Bash", "tool_input": {"command": f"ls {n}"}}
                pre = payload("PreToolUse", session, **bash)
                sample("PreToolUse", lambda: hook("PreToolUse", pre))
                grow()
                post = payload(
                    "PostToolUse", session, **bash, tool_response={"stdout": "ok", "stderr": ""}
                )
                sample("PostToolUse", lambda: hook("PostToolUse", post))
                grow()
                fail = payload(
                    "PostToolUseFailure",
                    session,
                    tool_name="Bash",
                    tool_input={"command": f"kubectl get pods -n ns{n}"},
                    error=f"Exit code 1\nError from server (NotFound): namespaces ns{n} not found",
                )
                sample("PostToolUseFailure", lambda: hook("PostToolUseFailure", fail))
                compact = payload("PostCompact", session, trigger="manual", compact_summary="s")
                sample("PostCompact", lambda: hook("PostCompact", compact))
                resume = payload("SessionStart", session, source="compact")
                sample("SessionStart (compact)", lambda: hook("SessionStart", resume))
                stop = payload("Stop", session, stop_hook_active=False)
                # No commit in this project: the Stop check holds it (exit 2), as in real use.
                sample("Stop (artifact check)", lambda: hook("Stop", stop, ok=(0, 2)))
                end = payload("SessionEnd", session, reason="other")
                sample("SessionEnd", lambda: hook("SessionEnd", end))
                time.sleep(0.3)  # the ended session's workflow closes before the next start

            for n in range(rounds):
                await asyncio.to_thread(one_round, n)
            await bare.execute_update(BareUpdate.noop)

    base50, _ = figures(samples["python -c pass"])
    print(f"rounds: {rounds}; {tasks} tasks in the table; goal: every hook event <= 150 ms p50")
    print(f"{'':34} {'p50 ms':>8} {'p99 ms':>8} {'p50 / python -c pass':>22}")
    for name, values in samples.items():
        p50, p99 = figures(values)
        print(f"{name:34} {p50:8.1f} {p99:8.1f} {p50 / base50:22.2f}")
    return 0


if __name__ == "__main__":
    run_and_exit(main())
