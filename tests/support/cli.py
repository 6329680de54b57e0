"""The `tether` command as a user runs it: a real process."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

TETHER = [sys.executable, "-m", "tether.cli"]


@dataclass
class Run:
    code: int
    out: str
    err: str


async def tether(env: dict[str, str], *args: str) -> Run:
    proc = await asyncio.create_subprocess_exec(
        *TETHER, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    run = Run(proc.returncode, out.decode(), err.decode())
    assert "Traceback" not in run.err, run.err
    return run


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *TETHER, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()
