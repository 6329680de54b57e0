"""Record the workflow histories the replay tests check new code against.

Run after a deliberate, versioned change to a workflow, and commit the new files:

    .venv/bin/python scripts/record_histories.py            # the histories not recorded yet
    .venv/bin/python scripts/record_histories.py task session governed   # these, again
    .venv/bin/python scripts/record_histories.py --sealed   # all of them, into histories/sealed
    .venv/bin/python scripts/record_histories.py --into write_behind   # a new generation
    .venv/bin/python scripts/record_histories.py --runner   # an agent's run, into histories/runner
    .venv/bin/python scripts/record_histories.py --paths    # wake, budgets, notify, the watch

Every message is sealed (the founder's client, the workers' activities); --sealed (or --into
NAME, for a generation of histories recorded after a versioned change: issue 18's write-behind
task and spread sessions are `write_behind`) keeps them in tests/histories/NAME/ with the public
keys they were recorded with (trust.json) and their workflow ids (ids.json).

It starts its own Temporal dev server and PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from scripts.throwaway import throwaway_stack  # noqa: E402
from tether import client as api  # noqa: E402
from tether.config import TetherConfig  # noqa: E402
from tether.contracts import (  # noqa: E402
    Artifact,
    DeployRequest,
    NoteInput,
    Report,
    SessionInput,
    TaskSpec,
    ToolCall,
)
from tether.names import process_workflow_id  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from tether.trust import seals  # noqa: E402
from tether.trust.signing import generate, load_private, order, sign  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows.session import AgentSessionWorkflow  # noqa: E402

OUT = ROOT / "tests" / "histories"


class Flaky(BaseHTTPRequestHandler):
    """Fails the first request, then succeeds: one failed and one passing verification."""

    calls = 0

    def do_GET(self) -> None:
        Flaky.calls += 1
        self.send_response(500 if Flaky.calls == 1 else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    try:
        async with throwaway_stack() as stack:
            client, tmp = stack.client, str(stack.folder)
            queue = f"record-{uuid.uuid4().hex[:8]}"
            repo = Path(tmp) / "app"
            _git_repo(repo)
            key_path, public = generate(Path(tmp) / "founder")
            config = TetherConfig.model_validate(
                {
                    "repositories": {"app": {"path": str(repo)}},
                    "agents": [{"name": "coder", "repositories": ["app"]}],
                    "founder": {"public_key": public},
                    "services": {
                        "web": {
                            "repository": "app",
                            "rollout": "true",
                            "health_checks": [
                                {"kind": "http", "url": url, "retry_for_seconds": 2,
                                 "retry_interval_seconds": 0.5}
                            ],
                        }
                    },
                }
            )  # fmt: skip
            files = {
                "task": ["task_lifecycle"],
                "session": ["session_lifecycle"],
                "governed": ["session_governed", "task_governed"],
                "deploy": ["deploy_lifecycle", "lock_lifecycle"],
            }
            argv = sys.argv[1:]
            if "--runner" in argv:
                await _record_runner(stack, queue, Path(tmp))
                return 0
            if "--paths" in argv:
                await _record_paths(stack, queue, Path(tmp))
                return 0
            into = "sealed" if "--sealed" in argv else None
            if "--into" in argv:
                at = argv.index("--into")
                into = argv[at + 1]
                argv = argv[:at] + argv[at + 2 :]
            args = [a for a in argv if a != "--sealed"]
            out = OUT / into if into else OUT
            wanted = set(args) or {
                name
                for name, stems in files.items()
                if not all((out / f"{stem}.json").exists() for stem in stems)
            }
            if out != OUT and not args:
                wanted = set(files)
            async with build_worker(client, queue, stack.store, config, stack.keys):
                histories: dict[str, WorkflowHistory] = {}
                if "task" in wanted:
                    histories["task_lifecycle"] = await _task(client, queue, url)
                if "session" in wanted:
                    histories["session_lifecycle"] = await _session(client, queue, repo)
                if "governed" in wanted:
                    session, task = await _governed(client, queue, load_private(key_path))
                    histories["session_governed"], histories["task_governed"] = session, task
                if "deploy" in wanted:
                    deploy, lock = await _deploy(client, queue, load_private(key_path), repo)
                    histories["deploy_lifecycle"], histories["lock_lifecycle"] = deploy, lock
            out.mkdir(parents=True, exist_ok=True)
            for stem, history in histories.items():
                path = out / f"{stem}.json"
                path.write_text(history.to_json())
                print(f"wrote {path.relative_to(ROOT)}")
            if out != OUT:
                trust, _ = stack.keys
                public = {role: seals.public_text(found[0]) for role, found in trust.keys.items()}
                (out / "trust.json").write_text(json.dumps(public, indent=2) + "\n")
                # A seal names its workflow: the replay needs each history's workflow id.
                ids = {stem: history.workflow_id for stem, history in histories.items()}
                (out / "ids.json").write_text(json.dumps(ids, indent=2, sort_keys=True) + "\n")
    finally:
        server.shutdown()
    return 0


# A program that crashes on its first start, and works until it is stopped on its second.
CRASHES_ONCE = (
    "import pathlib, sys, time\n"
    "p = pathlib.Path(sys.argv[1])\n"
    "n = int(p.read_text()) + 1 if p.exists() else 1\n"
    "p.write_text(str(n))\n"
    "if n == 1:\n"
    "    sys.exit('segfault in a dependency')\n"
    "time.sleep(300)\n"
)


async def _record_runner(stack: Any, queue: str, tmp: Path) -> None:
    """An agent Tether runs (runtime `command`): its first process crashes, the session
    restarts it, the founder stops the second, and the session ends. Into histories/runner: the
    session and each process's own workflow, with the keys and ids they were recorded with."""
    from tether.config import Settings
    from tether.contracts import RunRequest, StopInput

    program = tmp / "agent.py"
    program.write_text(CRASHES_ONCE)
    config = TetherConfig.model_validate(
        {"agents": [{"name": "runner", "runtime": "command", "isolation": "none",
                     "run": {"command": [sys.executable, str(program), str(tmp / "starts")],
                             "restart_backoff_seconds": 0.1}}]}
    )  # fmt: skip
    settings = Settings(home=tmp / "tether-home")
    client = stack.client
    async with build_worker(client, queue, stack.store, config, stack.keys, settings):
        await api.run_agent(client, queue, "runner", "command", RunRequest(prompt="go"))
        starts = tmp / "starts"
        for _ in range(600):  # the second process has started (a file the program writes)
            if starts.exists() and starts.read_text() == "2":
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        await api.stop_agent(client, "runner", StopInput(reason="recorded"))
        await api.end_session(client, "runner", "recorded", "founder")
        session = client.get_workflow_handle_for(AgentSessionWorkflow.run, "session-runner")
        await session.result()
        view = await api.session_view(client, "runner")
        assert view is not None and view.run is not None and view.run.attempts == 2, view
        histories = {"session_runs_agent": await session.fetch_history()}
        for attempt, stem in ((1, "agent_process_crashed"), (2, "agent_process_stopped")):
            process = client.get_workflow_handle(
                process_workflow_id("runner", f"{view.run.runtime_session}:{attempt}")
            )
            histories[stem] = await process.fetch_history()
    _write_generation(OUT / "runner", histories, stack)


class FailsOnce(BaseHTTPRequestHandler):
    """A webhook that refuses each message the first time it is posted (503), then takes it:
    every delivery is retried once."""

    seen: set[bytes] = set()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        again = body in FailsOnce.seen
        FailsOnce.seen.add(body)
        self.send_response(200 if again else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def _record_paths(stack: Any, queue: str, tmp: Path) -> None:
    """The paths no other generation has: an agent's wake round that finds its task and runs
    it; a session the team's monthly budget holds until the founder's signed raise; the
    webhook delivery of the inbox item that hold posts (refused once, then delivered); and the
    credential watch reminding of a credential about to expire. Into histories/paths."""
    import os
    from datetime import UTC, datetime, timedelta

    from tether.client.budgets import raise_budget
    from tether.config import Settings
    from tether.contracts import (
        DeliveryOutcome,
        StopInput,
        TokenUsage,
        WakeInput,
        WakeOutcome,
    )
    from tether.names import notify_workflow_id
    from workflows.credential_watch import CredentialWatchWorkflow
    from workflows.wake import WakeWorkflow

    hook = ThreadingHTTPServer(("127.0.0.1", 0), FailsOnce)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    os.environ["TETHER_RECORD_WEBHOOK"] = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    program = tmp / "agent.py"
    program.write_text("import time\ntime.sleep(300)\n")
    key_path, public = generate(tmp / "paths-founder")
    key = load_private(key_path)
    soon = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    config = TetherConfig.model_validate(
        {"agents": [{"name": "runner", "runtime": "command", "isolation": "none",
                     "run": {"command": [sys.executable, str(program)]}},
                    {"name": "coder"}],
         "founder": {"public_key": public},
         "budget": {"team_monthly_usd": 5.0},
         "credentials": {"vendor": {"env": "TETHER_RECORD_VENDOR", "kind": "declared",
                                    "expires": soon}},
         "notifications": {"webhook": {"env": "TETHER_RECORD_WEBHOOK"},
                           "webhook_max_interval_seconds": 1}}
    )  # fmt: skip
    settings = Settings(home=tmp / "tether-home")
    client = stack.client
    histories: dict[str, WorkflowHistory] = {}
    try:
        async with build_worker(client, queue, stack.store, config, stack.keys, settings):
            # The wake round finds the task assigned to the runner and runs it.
            spec = TaskSpec.model_validate(
                {"id": "replay-woken", "title": "Woken work", "assignee": "runner",
                 "checks": [{"kind": "shell", "command": "true"}]}
            )  # fmt: skip
            await api.create_task(client, queue, spec)
            wake = await client.start_workflow(
                WakeWorkflow.run, WakeInput(agent="runner"), id="wake-runner", task_queue=queue
            )
            woken: WakeOutcome = await wake.result()
            assert woken.started, woken
            await api.stop_agent(client, "runner", StopInput(reason="recorded"))
            await api.end_session(client, "runner", "recorded", "founder")
            await api.cancel_task(client, spec.id, "founder", "recorded")
            histories["wake_runs_agent"] = await wake.fetch_history()

            # The team's budget: $4 spent earlier today, then $0.75 a report holds the session.
            today = datetime.now(UTC).date().isoformat()
            await stack.store.record_spend_days("runner", "runner:earlier", {today: 4.0})
            await api.start_session(client, queue, SessionInput(agent="coder", runtime="sdk"))
            usage = {"claude-sonnet-4-5": TokenUsage(input=200_000, output=10_000)}
            await api.report(client, "coder", Report(usage=usage))
            held = await api.report(client, "coder", Report(usage=usage))
            assert held.deny is not None, held

            def sign(action: str, subject: str) -> Any:
                return order(action, subject, "founder", "recorded", key)

            raised = await raise_budget(
                client, stack.store, config, sign, 9.0, by="founder", reason="recorded"
            )
            assert raised.sessions == {"coder": "released"}, raised
            await api.end_session(client, "coder", "recorded", "founder")
            session = client.get_workflow_handle_for(AgentSessionWorkflow.run, "session-coder")
            await session.result()
            histories["session_budget_held"] = await session.fetch_history()

            # The hold's inbox item, delivered to the webhook on its second post.
            item = next(i for i in await stack.store.inbox(True) if i.kind == "budget_exceeded")
            assert item.id is not None
            delivery = client.get_workflow_handle(
                notify_workflow_id(item.id), result_type=DeliveryOutcome
            )
            delivered = await delivery.result()
            assert delivered.delivered, delivered
            histories["notify_retried"] = await delivery.fetch_history()

            # The credential watch: the declared credential expires in three days.
            watch = await client.start_workflow(
                CredentialWatchWorkflow.run, id="credential-watch", task_queue=queue
            )
            posted = await watch.result()
            assert any("vendor" in p for p in posted), posted
            histories["credential_watch_reminds"] = await watch.fetch_history()
    finally:
        hook.shutdown()
    _write_generation(OUT / "paths", histories, stack)


def _write_generation(out: Path, histories: dict[str, WorkflowHistory], stack: Any) -> None:
    """A generation of histories, with the public keys and workflow ids they replay with."""
    out.mkdir(parents=True, exist_ok=True)
    for stem, history in histories.items():
        (out / f"{stem}.json").write_text(history.to_json())
        print(f"wrote {(out / stem).relative_to(ROOT)}.json")
    trust, _ = stack.keys
    public = {role: seals.public_text(found[0]) for role, found in trust.keys.items()}
    (out / "trust.json").write_text(json.dumps(public, indent=2) + "\n")
    ids = {stem: history.workflow_id for stem, history in histories.items()}
    (out / "ids.json").write_text(json.dumps(ids, indent=2, sort_keys=True) + "\n")


def _git_repo(path: Path) -> None:
    env = {"GIT_AUTHOR_NAME": "r", "GIT_AUTHOR_EMAIL": "r@x", "GIT_COMMITTER_NAME": "r",
           "GIT_COMMITTER_EMAIL": "r@x", "PATH": "/usr/bin:/bin"}  # fmt: skip
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    (path / "README.md").write_text("x\n")
    subprocess.run(["git", "-C", str(path), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)


async def _session(client: Client, queue: str, repo: Path) -> WorkflowHistory:
    """A session that starts, is asked for its deliverable, declares one, and ends."""
    await api.start_session(client, queue, SessionInput(agent="coder", external_id="rec-1"))
    await api.check_deliverable(client, "coder")
    handle = client.get_workflow_handle_for(AgentSessionWorkflow.run, "session-coder")
    await handle.execute_update(
        AgentSessionWorkflow.declare, Artifact(kind="file", path=str(repo / "README.md"))
    )
    await api.end_session(client, "coder", "recorded", "agent")
    await handle.result()
    return await handle.fetch_history()


async def _governed(
    client: Client, queue: str, key: Ed25519PrivateKey
) -> tuple[WorkflowHistory, WorkflowHistory]:
    """A session on a task that loops (five identical failures: the task is blocked), is
    released by the founder's signed order, takes notes, spends, and hands off at 95%."""
    spec = TaskSpec.model_validate(
        {"id": "replay-governed", "title": "Governed work", "kind": "bugfix",
         "checks": [{"kind": "shell", "command": "true"}]}
    )  # fmt: skip
    await api.create_task(client, queue, spec)
    await api.start_session(client, queue, SessionInput(agent="coder", runtime="sdk"))
    await api.claim_task(client, spec.id, "coder")
    failing = ToolCall(tool="Bash", ok=False, action="Bash:kubectl set",
                       signature="1|Forbidden|forbidden", error="(Forbidden)")  # fmt: skip
    for n in range(5):
        await api.report(
            client, "coder", Report(tool_call=failing.model_copy(update={"input_digest": str(n)}))
        )
    unblock = order("unblock", spec.id, "founder", "permission granted", key)
    await api.unblock_task(client, spec.id, "founder", "permission granted", order=unblock)
    await api.note_session(client, "coder", NoteInput(kind="decision", text="use a canary"))
    for tokens in (100_000, 141_000, 171_000, 191_000):
        await api.report(client, "coder", Report(context_tokens=tokens, cost_usd=0.25))
    session = client.get_workflow_handle_for(AgentSessionWorkflow.run, "session-coder")
    await session.result()
    await api.cancel_task(client, spec.id, "founder", "recorded")
    task = client.get_workflow_handle(f"task-{spec.id}")
    await task.result()
    return await session.fetch_history(), await task.fetch_history()


async def _deploy(
    client: Client, queue: str, key: Ed25519PrivateKey, repo: Path
) -> tuple[WorkflowHistory, WorkflowHistory]:
    """A deployment that gets an unsigned approval (refused), then the founder's with the
    founder's signed tag, rolls out and passes its health check; and the service's lock."""
    view = await api.request_deploy(
        client, queue, DeployRequest(service="web", ref="main", agent="coder")
    )
    tag, _ = api.tag_approval(view, repo, None, key, "founder")
    approval = api.prepare_approval(
        view, decision="approve", by="founder", reason="", ttl=None, tag=tag
    )
    refused = await api.submit_approval(client, view.deployment_id, approval)
    assert not refused.accepted
    assert (await api.submit_approval(client, view.deployment_id, sign(approval, key))).accepted
    handle = client.get_workflow_handle(view.deployment_id)
    await handle.result()
    lock = client.get_workflow_handle("lock-web")
    return await handle.fetch_history(), await lock.fetch_history()


async def _task(client: Client, queue: str, url: str) -> WorkflowHistory:
    spec = TaskSpec.model_validate(
        {
            "id": "replay-lifecycle",
            "title": "Lifecycle recorded for replay tests",
            "checks": [{"kind": "http", "url": url, "name": "health"}],
        }
    )
    await api.create_task(client, queue, spec)
    await api.claim_task(client, spec.id, "coder")
    await api.block_task(client, spec.id, "founder", "waiting for a key")
    await api.unblock_task(client, spec.id, "founder", "key arrived")
    first = await api.submit_task(client, spec.id, "coder", "done")
    second = await api.submit_task(client, spec.id, "coder", "fixed")
    assert not first.done and second.done
    handle = client.get_workflow_handle(f"task-{spec.id}")
    await handle.result()
    return await handle.fetch_history()


if __name__ == "__main__":
    run_and_exit(main())
