"""Benchmark: the wall time of one Claude Code hook call, process start included.

Starts its own Temporal dev server, PostgreSQL and worker, opens a session, then runs the real
`tether hook claude-code ...` executable the way Claude Code does (a new process, JSON on
stdin) and prints p50/p99 per event, next to a bare `python -c pass` measured in the same run.

    .venv/bin/python scripts/bench_hooks.py [--calls 100]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.throwaway import throwaway_stack  # noqa: E402
from tether import client as api  # noqa: E402
from tether.config import TetherConfig  # noqa: E402
from tether.contracts import SessionInput  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from worker import build_worker  # noqa: E402

TETHER = str(Path(sys.executable).with_name("tether"))


def timed(argv: list[str], stdin: bytes, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0 or b"Traceback" in done.stderr:
        raise SystemExit(f"{argv} failed: {done.stderr.decode()[-500:]}")
    return elapsed


def figures(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    calls = parser.parse_args().calls
    async with throwaway_stack(http_api=True) as stack:
        client, tmp = stack.client, str(stack.folder)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        config = TetherConfig.model_validate({"agents": [{"name": "bench"}]})
        async with build_worker(client, queue, stack.store, config):
            await api.start_session(client, queue, SessionInput(agent="bench", external_id="b-1"))
            hook_env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("TETHER_")},
                "TETHER_TEMPORAL_HTTP": str(stack.http_url),
                "TETHER_TASK_QUEUE": queue,
                "TETHER_HOME": tmp,
            }
            # A transcript of 2,000 assistant messages: the first report reads it all,
            # later ones only what is new (nothing, here).
            transcript = Path(tmp) / "transcript.jsonl"
            transcript.write_text(
                "".join(
                    json.dumps({"type": "assistant", "message": {"id": f"m{i}",
                                "model": "claude-sonnet-4-5", "usage": {"input_tokens": 9,
                                "cache_read_input_tokens": 50_000 + i, "output_tokens": 80}}})
                    + "\n"
                    for i in range(2000)
                )
            )  # fmt: skip
            pre = json.dumps(
                {"hook_event_name": "PreToolUse", "session_id": "b-1", "tool_name": "Bash",
                 "tool_input": {"command": "ls"}}
            ).encode()  # fmt: skip
            stop = json.dumps({"hook_event_name": "Stop", "session_id": "b-1"}).encode()
            ok = json.dumps(
                {"hook_event_name": "PostToolUse", "session_id": "b-1", "tool_name": "Bash",
                 "tool_input": {"command": "kubectl get pods -n prod"},
                 "tool_response": {"stdout": "ok"}, "transcript_path": str(transcript)}
            ).encode()  # fmt: skip
            failed = json.dumps(
                {"hook_event_name": "PostToolUseFailure", "session_id": "b-1",
                 "tool_name": "Bash", "tool_input": {"command": "kubectl get pods -n prod"},
                 "error": "Exit code 1\nError from server (Forbidden): pods is forbidden",
                 "transcript_path": str(transcript)}
            ).encode()  # fmt: skip

            def run(event: str, body: bytes, n: int) -> list[float]:
                argv = [TETHER, "hook", "claude-code", event, "--agent", "bench"]
                return [timed(argv, body, hook_env) for _ in range(n)]

            baseline = await asyncio.to_thread(
                lambda: [timed([sys.executable, "-c", "pass"], b"", hook_env) for _ in range(calls)]
            )
            pre_times = await asyncio.to_thread(run, "PreToolUse", pre, calls)
            stop_times = await asyncio.to_thread(run, "Stop", stop, max(10, calls // 10))
            # Alternating calls so that no five in a row are the same failing action.
            first_report = await asyncio.to_thread(run, "PostToolUseFailure", failed, 1)
            report_times = await asyncio.to_thread(
                lambda: [
                    t
                    for _ in range(calls // 4)
                    for t in run("PostToolUseFailure", failed, 3) + run("PostToolUse", ok, 1)
                ]
            )
            cli_times = await asyncio.to_thread(
                lambda: [timed([TETHER, "--help"], b"", hook_env) for _ in range(10)]
            )

    base50, _ = figures(baseline)
    print(f"calls per figure: {calls} (Stop: {len(stop_times)}, full CLI: {len(cli_times)})")
    print(f"{'':34} {'p50 ms':>8} {'p99 ms':>8} {'p50 / python -c pass':>22}")
    for name, samples in (
        ("python -c pass (baseline)", baseline),
        ("hook PreToolUse (query)", pre_times),
        ("hook Stop (artifact test, update)", stop_times),
        ("hook PostToolUse* (report, update)", report_times),
        ("first report (2,000-line transcript)", first_report),
        ("tether --help (full CLI import)", cli_times),
    ):
        p50, p99 = figures(samples)
        print(f"{name:34} {p50:8.1f} {p99:8.1f} {p50 / base50:22.2f}")
    return 0


if __name__ == "__main__":
    run_and_exit(main())
