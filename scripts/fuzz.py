"""A long fuzz run against real processes and servers; prints what it tried and what broke.

- the property suite (tests/test_fuzz.py) with many more examples;
- `tether task create --file` on random files (real processes): tracebacks, hangs;
- the Claude Code hook on random stdin, failing closed (real processes): tracebacks, hangs,
  PreToolUse answers that are not a deny;
- random signal and update payloads to live task, session, deployment-free workflows on a
  throwaway stack: workflows left jammed (a failing workflow task, or no answer to a query);
- check commands that try to get a file-held secret into evidence (env, the worker's /proc,
  base64, hex, reversed, cut up): evidence that still holds the secret.

Every count but "inputs tried" should be zero.

    .venv/bin/python scripts/fuzz.py [--examples 2000] [--processes 150] [--messages 300]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio import workflow  # noqa: E402
from temporalio.service import RPCError  # noqa: E402

from activities.checks import run_check  # noqa: E402
from scripts.throwaway import throwaway_stack  # noqa: E402
from tether import client as api  # noqa: E402
from tether.config import TetherConfig  # noqa: E402
from tether.contracts import RunCheckInput, SessionInput, ShellCheck, TaskSpec  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from tether.ops.stack import free_port  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows.session import AgentSessionWorkflow  # noqa: E402
from workflows.task import TaskWorkflow  # noqa: E402


def json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 42, 2**63, 1.5, float("nan")])
    if kind in (3, 4):
        return rng.choice(["", "x", "coder", "Bad Name", "é" * 5, "a" * 300, "{}"])
    if kind == 5:
        return [json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["id", "agent", "task_id", "kind", "reason", "external_id", "nope", ""]
    return {rng.choice(keys): json_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def random_file(rng: random.Random) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return rng.randbytes(rng.randrange(300))
    if choice == 1:
        return ("[" * rng.randrange(1, 5000) + "]").encode()
    lines = []
    for _ in range(rng.randrange(8)):
        key = rng.choice(["id", "title", "checks", "kind", "command", "[[checks]]", "x.y"])
        lines.append(f"{key} = {json.dumps(json_value(rng))}" if "[" not in key else key)
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def run(argv: list[str], stdin: bytes, env: dict[str, str]) -> tuple[int | None, str, str]:
    try:
        done = subprocess.run(argv, input=stdin, env=env, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None, "", ""
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    return done.returncode, out, err


def process_fuzz(rng: random.Random, count: int) -> dict[str, int]:
    dead = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "TEMPORAL_ADDRESS": dead, "TETHER_HOME": tempfile.mkdtemp()}
    figures = {"files tried": 0, "hook inputs tried": 0, "tracebacks": 0, "hangs": 0}
    figures["PreToolUse not denied (fail closed)"] = 0
    with tempfile.TemporaryDirectory() as folder:
        for i in range(count):
            path = Path(folder) / f"t{i}.toml"
            path.write_bytes(random_file(rng))
            argv = [sys.executable, "-m", "tether.cli", "task", "create", "--file", str(path)]
            code, _, err = run(argv, b"", env)
            figures["files tried"] += 1
            figures["hangs"] += code is None
            figures["tracebacks"] += "Traceback" in err
        for _ in range(count):
            payload = json_value(rng)
            raw = json.dumps(payload).encode() if rng.random() < 0.8 else rng.randbytes(200)
            argv = [sys.executable, "-S", "-m", "tether.hook", "claude-code", "PreToolUse"]
            argv += ["--agent", "fuzz", "--fail-closed", "--gateway", f"http://{dead}"]
            code, out, err = run(argv, raw, {**env, "PYTHONPATH": str(ROOT)})
            figures["hook inputs tried"] += 1
            figures["hangs"] += code is None
            figures["tracebacks"] += "Traceback" in err
            denied = '"permissionDecision": "deny"' in out
            figures["PreToolUse not denied (fail closed)"] += not denied
    return figures


async def message_fuzz(rng: random.Random, count: int) -> dict[str, int]:
    figures = {"messages sent": 0, "workflows jammed": 0}
    async with throwaway_stack() as stack:
        client, queue = stack.client, f"fuzz-{uuid.uuid4().hex[:6]}"
        config = TetherConfig.model_validate({"agents": [{"name": "fuzz"}]})
        async with build_worker(client, queue, stack.store, config, stack.keys):
            spec = TaskSpec(id="fuzz-task", title="fuzz", checks=[ShellCheck(command="true")])
            await api.create_task(client, queue, spec)
            await api.start_session(client, queue, SessionInput(agent="fuzz"))
            targets = [
                (TaskWorkflow, "task-fuzz-task", "view_task"),
                (AgentSessionWorkflow, "session-fuzz", "view_session"),
            ]
            for cls, workflow_id, _ in targets:
                definition = workflow._Definition.must_from_class(cls)
                names = [("signal", n) for n in definition.signals if n]
                names += [("update", n) for n in definition.updates if n and n != "end"]
                handle = client.get_workflow_handle(workflow_id)
                for _ in range(count // len(targets)):
                    kind, name = rng.choice(names)
                    args = [json_value(rng) for _ in range(rng.randrange(3))]
                    figures["messages sent"] += 1
                    try:
                        if kind == "signal":
                            await handle.signal(name, *args)
                        else:
                            await asyncio.wait_for(
                                handle.execute_update(name, args=args), timeout=10
                            )
                    except (RPCError, TimeoutError, Exception):  # refusals are the point
                        pass
            await asyncio.sleep(2)
            for _, workflow_id, query in targets:
                handle = client.get_workflow_handle(workflow_id)
                try:
                    await asyncio.wait_for(handle.query(query), timeout=10)
                    pending = (await handle.describe()).raw_description.pending_workflow_task
                    figures["workflows jammed"] += pending.attempt > 1
                except Exception:
                    figures["workflows jammed"] += 1
    return figures


async def leak_fuzz(rng: random.Random, count: int) -> dict[str, int]:
    secret = f"fz-{uuid.uuid4().hex}"
    folder = Path(tempfile.mkdtemp())
    token = folder / "token"
    token.write_text(secret)
    os.environ["FUZZ_SECRET_HOLDER"] = secret
    config = TetherConfig.model_validate(
        {
            "credentials": {
                "held": {"kind": "http", "file": str(token), "probe_url": "http://127.0.0.1:9/"},
                "env": {"kind": "http", "env": "FUZZ_SECRET_HOLDER", "probe_url": "http://x/"},
            }
        }
    )
    tricks = [
        "env",
        f"cat /proc/{os.getpid()}/environ",
        f"cat {token}",
        f"base64 -w0 {token}",
        f"rev {token}",
        f"od -An -tx1 {token} | tr -d ' \\n'",
        f"printf 'pre%s' $(cat {token}) | base64 -w0",
        f"tr a-z A-Z < {token}",
        f"fold -w7 {token}",
    ]
    forms = {secret, secret[::-1], secret.encode().hex(), base64.b64encode(secret.encode())[:-4]}
    figures = {"check commands tried": 0, "secrets leaked into evidence": 0}
    for _ in range(count):
        command = "; ".join(rng.sample(tricks, k=rng.randrange(1, 4)))
        check = ShellCheck(command=command)
        evidence = await run_check(RunCheckInput(task_id="t", index=0, check=check), config)
        text = evidence.model_dump_json()
        figures["check commands tried"] += 1
        figures["secrets leaked into evidence"] += any(
            (f.decode() if isinstance(f, bytes) else f) in text for f in forms
        )
    return figures


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=2000, help="per property")
    parser.add_argument("--processes", type=int, default=150, help="files and hook inputs each")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--checks", type=int, default=60)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    print(f"seed {seed}")
    suite = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            str(ROOT / "tests/test_fuzz.py"),
        ],
        env={**os.environ, "TETHER_FUZZ_EXAMPLES": str(args.examples)},
        capture_output=True,
        text=True,
    )
    print(f"property suite (tests/test_fuzz.py), {args.examples} examples per property:")
    print("  " + (suite.stdout.strip().splitlines() or ["no output"])[-1])
    figures: dict[str, int] = {"properties failing": int(suite.returncode != 0)}
    if suite.returncode != 0:
        print(suite.stdout[-3000:])
    figures |= await asyncio.to_thread(process_fuzz, rng, args.processes)
    figures |= await message_fuzz(rng, args.messages)
    figures |= await leak_fuzz(rng, args.checks)
    width = max(len(k) for k in figures)
    for name, value in figures.items():
        print(f"{name:{width}}  {value}")
    bad = [k for k, v in figures.items() if v and not k.endswith(("tried", "sent"))]
    print("all zero" if not bad else f"NOT ZERO: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    run_and_exit(main())
