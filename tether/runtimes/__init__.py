"""The agent runtimes Tether knows, one module each (see tether/runtimes/base.py for what a
module says). A new runtime is one new module and a line in RUNTIMES below.

Standard library only: the hook process imports this on every tool call.
"""

from __future__ import annotations

from tether.runtimes import claude_code, codex, cursor, gemini
from tether.runtimes.base import Runtime

__all__ = ["COMMAND", "NAMES", "RUNTIMES", "Runtime", "get"]

RUNTIMES: dict[str, Runtime] = {
    r.name: r for r in (claude_code.RUNTIME, codex.RUNTIME, gemini.RUNTIME, cursor.RUNTIME)
}
NAMES = tuple(RUNTIMES)
# What an agent's `runtime` may be: a runtime above, or "command" (its run.command, no hooks
# of its own unless installed).
COMMAND = "command"


def get(name: str) -> Runtime:
    found = RUNTIMES.get(name)
    if found is None:
        raise KeyError(f"no runtime named {name!r} (Tether knows {', '.join(NAMES)})")
    return found
