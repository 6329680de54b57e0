"""Benchmark: fingerprinting 1 MB of error text, whatever its shape (issue 13: under 50 ms).

Each shape is a failing Bash call's error and the same text as a "successful" piped call's
output (the masked-failure check), reduced by the hook's own `claude_code_tool_call`; beside
it, hashing the same text with SHA-256 (what any report must at least do with it), measured in
the same run.

    .venv/bin/python scripts/bench_fingerprint.py
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tether.hook.fingerprint import claude_code_tool_call  # noqa: E402

SIZE = 1_000_000
SHAPES = {
    "one line of letters": "a",
    "a-a-a (a boundary per char)": "a-",
    "digits and dots": "1.2.",
    "base64-like": "Ab3+",
    "url-like": "http:",
    "path-like": "/a",
    "many short lines": "error: something failed at /srv/x/y.py:12\n",
    "hex ids": "deadbeef7 ",
}


def best_of(n: int, run: object) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def main() -> int:
    print(f"{SIZE:,} characters of error text per call; goal: under 50 ms")
    print(f"{'shape':30} {'fingerprint ms':>15} {'sha256 ms':>10} {'ratio':>7}")
    worst = 0.0
    for name, unit in SHAPES.items():
        text = "Exit code 1\n" + unit * (SIZE // len(unit))
        failed = {"tool_name": "Bash", "tool_input": {"command": "deploy | tee out"}, "error": text}
        piped = {
            "tool_name": "Bash",
            "tool_input": {"command": "deploy | tee out"},
            "tool_response": {"stdout": text, "stderr": ""},
        }

        def fingerprint(
            failed: dict[str, object] = failed, piped: dict[str, object] = piped
        ) -> None:
            claude_code_tool_call("PostToolUseFailure", failed)
            claude_code_tool_call("PostToolUse", piped)

        took = best_of(3, fingerprint)
        base = best_of(3, lambda text=text: hashlib.sha256(text.encode()).hexdigest())
        worst = max(worst, took)
        print(f"{name:30} {took:15.1f} {base:10.1f} {took / base:7.1f}")
    print(f"worst: {worst:.1f} ms ({'within' if worst < 50 else 'OVER'} the 50 ms goal)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
