"""Benchmark: what the sandbox adds to starting an agent's process (issue 28).

Starts the same program N times unsandboxed and N times in an agent's sandbox (the runner's own
path: `tether.ops.sandbox.walls`, `prepare`, the launcher, srt, bubblewrap), interleaved, and
prints each one's p50 and p90 and the difference of the p50s. Two programs: `true` (the wrap
alone) and `python -c pass` (a runtime that does a little work at start). The hook round trip
from inside the sandbox is `scripts/bench_hooks.py --sandboxed`.

The goal: the sandbox adds at most 300 ms per start at p50.

    .venv/bin/python scripts/bench_sandbox.py [--starts 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tether.ops import sandbox  # noqa: E402

PROGRAMS = {"true": ["/bin/true"], "python -c pass": [sys.executable, "-c", "pass"]}


def started(argv: list[str], folder: Path | None) -> float:
    """Seconds from start to exit of `argv`, in a sandbox of its own when `folder` is given."""
    env = {"PATH": "/usr/bin:/bin"}
    t0 = time.perf_counter()
    if folder is None:
        subprocess.run(argv, env=env, check=True)
        return time.perf_counter() - t0
    walls = sandbox.walls(
        agent="bench",
        runtime="command",
        worktree=folder / "worktree",
        home=folder / "home" / "agents" / "bench",
        tether_home=folder / "home",
        gateway_url="http://127.0.0.1:9",
        repositories=[],
        network=[],
        env=env,
        secret_names=[],
    )
    launch = sandbox.prepare(walls, argv, folder / "worktree", env, folder / "home" / "run")
    try:
        subprocess.run(launch.argv, env=env, pass_fds=(launch.events_fd,), check=True)
    finally:
        launch.done()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=20)
    args = parser.parse_args()
    why = sandbox.host_refusal()
    if why is not None:
        raise SystemExit(f"this host cannot sandbox: {why}")
    folder = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    (folder / "worktree").mkdir()
    print(f"starts: {args.starts} each, interleaved; goal: the sandbox adds <= 300 ms at p50")
    print(f"{'':16} {'plain p50':>10} {'p90':>7} {'sandboxed p50':>14} {'p90':>7} {'added':>7}")
    for name, argv in PROGRAMS.items():
        plain: list[float] = []
        walled: list[float] = []
        started(argv, folder)  # the first wrap warms the page cache for node and srt
        for _ in range(args.starts):
            plain.append(started(argv, None))
            walled.append(started(argv, folder))
        p = [statistics.median(plain), statistics.quantiles(plain, n=10)[-1]]
        w = [statistics.median(walled), statistics.quantiles(walled, n=10)[-1]]
        print(
            f"{name:16} {p[0] * 1000:8.0f}ms {p[1] * 1000:5.0f}ms {w[0] * 1000:12.0f}ms "
            f"{w[1] * 1000:5.0f}ms {(w[0] - p[0]) * 1000:5.0f}ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
