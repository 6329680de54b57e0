"""Benchmark: what the sandbox adds to starting an agent's process (issue 28).

Starts the same program N times unsandboxed and N times in an agent's sandbox, interleaved, on
the runner's own path (`tether.ops.sandbox`: walls, the plan, the launcher, srt, bubblewrap),
two ways: "cold", a launcher started for the start (as `tether sandbox` does), and "warm", the
worker's spare launcher, started ahead of the agent (node up, srt loaded), as the runner does
for every start but a worker's first. Prints each one's p50 and p90 and what it adds to the
plain start's p50. Two programs: `true` (the wrap alone) and `python -c pass` (a runtime that
does a little work at start). The hook round trip from inside the sandbox is
`scripts/bench_hooks.py --sandboxed`.

The goal: the sandbox adds at most 300 ms per start at p50.

    .venv/bin/python scripts/bench_sandbox.py [--starts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tether.ops import sandbox  # noqa: E402

PROGRAMS = {"true": ["/bin/true"], "python -c pass": [sys.executable, "-c", "pass"]}
ENV = {"PATH": "/usr/bin:/bin"}
# Agents start seconds apart at the least: the spare has loaded by the next start.
BETWEEN_STARTS = 1.0


async def plain(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, env=ENV)
    await proc.wait()
    return time.perf_counter() - t0


async def walled(argv: list[str], folder: Path, spares: sandbox.Launchers | None) -> float:
    """Seconds from the start's request to the program's exit, in a sandbox of its own: from a
    spare launcher (`spares`) or one started for it."""
    t0 = time.perf_counter()
    walls = sandbox.walls(
        agent="bench",
        runtime="command",
        worktree=folder / "worktree",
        home=folder / "home" / "agents" / "bench",
        tether_home=folder / "home",
        gateway_url="http://127.0.0.1:9",
        repositories=[],
        network=[],
        env=ENV,
        secret_names=[],
    )
    plan = sandbox.prepare(walls, argv, folder / "worktree", ENV)
    launcher = await (spares.take() if spares else sandbox.start_launcher(env=ENV))
    try:
        await launcher.send(plan)
        if await launcher.process.wait() != 0:
            raise SystemExit(f"{argv} failed in the sandbox")
    finally:
        launcher.done()
    return time.perf_counter() - t0


def figures(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), statistics.quantiles(samples, n=10)[-1]


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=20)
    args = parser.parse_args()
    why = sandbox.host_refusal()
    if why is not None:
        raise SystemExit(f"this host cannot sandbox: {why}")
    folder = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    (folder / "worktree").mkdir()
    spares = sandbox.Launchers(env=ENV)
    print(f"starts: {args.starts} each, interleaved; goal: the sandbox adds <= 300 ms at p50")
    print(f"{'':16} {'':5} {'p50':>7} {'p90':>7} {'added at p50':>13}")
    try:
        for name, argv in PROGRAMS.items():
            samples: dict[str, list[float]] = {"plain": [], "cold": [], "warm": []}
            await walled(argv, folder, spares)  # warms the page cache, and makes the spare
            for _ in range(args.starts):
                samples["plain"].append(await plain(argv))
                samples["cold"].append(await walled(argv, folder, None))
                await asyncio.sleep(BETWEEN_STARTS)
                samples["warm"].append(await walled(argv, folder, spares))
            base = figures(samples["plain"])[0]
            for way, found in samples.items():
                p50, p90 = figures(found)
                added = "" if way == "plain" else f"{(p50 - base) * 1000:11.0f}ms"
                print(f"{name:16} {way:5} {p50 * 1000:5.0f}ms {p90 * 1000:5.0f}ms {added:>13}")
    finally:
        await spares.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
