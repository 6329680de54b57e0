"""`tether demo --runtime claude-code`: the incidents replayed by the real Claude Code CLI.

The default demo's agents are scripted clients of Tether. Here each agent is a real Claude Code
process that Tether runs itself (`tether run`), in its own worktree, with the gateway's hooks,
against a scripted Messages API on 127.0.0.1 (tether/ops/model_server.py): the model's answers
are the script, everything else is the product. The agents use the `tether` command from their
shell, through the gateway, with the token Tether minted for the run. A guardrail that acts here
acts on the runtime itself: the loop's process is ended before it asks the model again, the
cost pause ends it too, the handoff starts the next session from the brief.

The deployment incident's requests are made by the demo, as in the default demo (its guardrail
is the deployment workflow's, whoever asks).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client

from tether import client as api
from tether import constants
from tether.cli.demo import KUBECTL_VARIANTS, Demo, Incident, World
from tether.config import AgentRunner
from tether.contracts import (
    Artifact,
    HttpCheck,
    NoteInput,
    RunRequest,
    SessionInput,
    SessionView,
    TaskState,
)
from tether.errors import TetherError
from tether.ops.model_server import MODEL, ModelApi, Request, Turn, Usage

# Where `./run test` installs the pinned CLI (tests/runtimes/claude-code), found when no other.
PINNED = Path(__file__).resolve().parents[2] / "tests" / "runtimes" / "claude-code"
# What Claude Code leaves of a 200,000-token window with auto-compact on.
USABLE = 167_000
BRIEF_MARKER = "Handoff from your previous session:"
RUN_SECONDS = 120.0

FORBIDDEN = (
    'Error from server (Forbidden): deployments.apps "web" is forbidden: User '
    '"system:serviceaccount:ci:deployer" cannot patch resource "deployments" in API group '
    '"apps" in the namespace "prod"'
)


def find_claude(explicit: str | None = None) -> Path:
    """The Claude Code CLI: --claude, $TETHER_CLAUDE, `claude` on PATH, or the pinned one
    `./run test` installs. None of them: a clear error saying how to get it."""
    candidates = [explicit, os.environ.get("TETHER_CLAUDE"), shutil.which("claude")]
    candidates.append(str(PINNED / "node_modules" / ".bin" / "claude"))
    for found in candidates:
        if found and Path(found).exists() and os.access(found, os.X_OK):
            # Absolute: Tether starts each agent in its own worktree.
            return Path(found).resolve()
    if explicit:
        raise TetherError(f"--claude {explicit}: no such executable")
    raise TetherError(
        "tether demo --runtime claude-code runs the real Claude Code CLI, and none was found: "
        "install it (npm install -g @anthropic-ai/claude-code, Node.js 20+), or give its path "
        "with --claude PATH (./run test installs the pinned one under tests/runtimes/claude-code)"
    )


def prepare_bin(world: World) -> Path:
    """The agents' PATH: a `tether` that runs this Tether, and a `kubectl` the cluster refuses."""
    folder = world.folder / "bin"
    folder.mkdir(exist_ok=True)
    shim = folder / "tether"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tether.cli "$@"\n')
    kubectl = folder / "kubectl"
    kubectl.write_text(f"#!/bin/sh\necho '{FORBIDDEN}' >&2\nexit 1\n")
    for script in (shim, kubectl):
        script.chmod(0o755)
    return folder


class RuntimeDemo(Demo):
    """The same incidents, each agent a real Claude Code process Tether runs."""

    def __init__(self, client: Client, world: World, store: Any, claude: Path) -> None:
        super().__init__(client, world)
        self.store = store
        self.claude = claude
        self.bin = prepare_bin(world)
        self.home = world.folder / "claude-home"
        # The memory incident's run ends with the agent's claim of done: the next one reads it.
        self.submitted: list[str] = []

    def _runs(self, role: str, model: ModelApi) -> str:
        """Run `role` as Claude Code against `model` (the worker reads tether.toml live)."""
        agent = self.w.config.agent(self.w.agent(role))
        assert agent is not None
        agent.runtime = "claude-code"
        agent.run = AgentRunner(
            binary=str(self.claude),
            model=MODEL,
            home=str(self.home),
            env=model.claude_env(self.bin),
            stop_grace_seconds=2,
        )
        return agent.name

    async def _run(self, role: str, prompt: str, task_id: str | None = None) -> SessionView:
        return await api.run_agent(
            self.client,
            self.w.task_queue,
            self.w.agent(role),
            "claude-code",
            RunRequest(prompt=prompt, task_id=task_id, by="founder (demo)"),
        )

    async def _until_session(
        self, role: str, done: Callable[[SessionView], bool], what: str
    ) -> SessionView:
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            view = await api.session_view(self.client, self.w.agent(role))
            if view is not None and done(view):
                return view
            await asyncio.sleep(0.2)
        raise TetherError(f"{self.w.agent(role)}: {what} did not happen within {RUN_SECONDS:g} s")

    async def _open_session(self, role: str, **kw: Any) -> SessionView:
        """A session Tether then runs the agent in (Claude Code's session id is a UUID)."""
        return await api.start_session(
            self.client,
            self.w.task_queue,
            SessionInput(
                agent=self.w.agent(role),
                external_id=str(uuid.uuid4()),
                runtime="claude-code",
                **kw,
            ),
        )

    # 1. Context: at 96% the process is ended, and the next session starts from the brief.
    async def memory(self, inc: Incident) -> None:
        coder = self.w.agent("coder")
        task = await self.create(
            "checkout",
            "The checkout endpoint answers 200",
            [HttpCheck(name="checkout", url=f"{self.w.api.url}/checkout")],
            kind="bugfix",
        )
        decision = "Totals are computed in cents, never floats"
        later: list[Request] = []

        def script(n: int, request: Request) -> Turn:
            if BRIEF_MARKER not in request.shown():
                pct = 0.50 if n == 0 else 0.96
                return Turn.bash(f"echo reading src/cart/totals_{n}.py", Usage(int(pct * USABLE)))
            later.append(request)
            if len(later) == 1:
                return Turn.bash(
                    f"tether task submit {task} --agent {coder} --note 'fixed the totals, all done'"
                )
            self.submitted.append(str(request.last_tool_results()))
            return Turn.say("Fixed the totals; the task is done.")

        with ModelApi(script) as model:
            self._runs("coder", model)
            first = await self._open_session("coder")
            await api.claim_task(self.client, task, coder)
            await api.note_session(self.client, coder, NoteInput(kind="decision", text=decision))
            started = time.monotonic()
            await self._run("coder", "Fix the checkout totals.", task)
            after = await self._until_session(
                "coder",
                lambda v: v.started_at != first.started_at and v.ended_at is not None,
                "the session after the handoff finishing",
            )
            inc.seconds = time.monotonic() - started
            before = [r for r in model.main_requests() if BRIEF_MARKER not in r.shown()]
        handoffs = await self._handoffs(coder)
        inherited = bool(later) and decision in later[0].shown()
        inc.caught = (
            len(before) == 2
            and handoffs == 1
            and inherited
            and after.run is not None
            and after.run.request.by == "tether (handoff)"
            and after.task_id == task
        )
        inc.what = (
            f"Claude Code crossed 96% at its second model request: Tether ended the process "
            f"before a third, archived the handoff, and started the next session itself, whose "
            f"first context was the brief (decision kept: {'yes' if inherited else 'NO'}, task "
            f"{after.task_id or 'lost'})"
        )
        inc.workflows = [constants.session_workflow_id(coder)]

    async def _handoffs(self, agent: str) -> int:
        found = await self.store.pool.fetchval(
            "SELECT count(*) FROM handoffs WHERE agent = $1", agent
        )
        return int(found or 0)

    # 2. Done means done: the agent's own `tether task submit` from its shell.
    async def done_means_done(self, inc: Incident) -> None:
        task = self.w.task("checkout")
        started = time.monotonic()
        view = await api.get_view(self.client, task)
        inc.seconds = time.monotonic() - started
        said = self.submitted[0] if self.submitted else ""
        inc.caught = view.state == TaskState.CLAIMED and "NOT DONE" in said and "500" in said
        inc.what = (
            "Claude Code ran `tether task submit` and said the task was done; Tether ran the "
            f"check itself (the endpoint answers 500) and the agent read NOT DONE; task {task} "
            f"is {view.state}"
        )
        inc.workflows = [constants.task_workflow_id(task)]

    # 3. Duplicate work: the second agent's claim, from its shell, is refused.
    async def duplicate(self, inc: Incident) -> None:
        task = self.w.task("checkout")
        devops = self.w.agent("devops")
        said: list[str] = []

        def script(n: int, request: Request) -> Turn:
            if n == 0:
                return Turn.bash(f"tether task claim {task} --agent {devops}")
            said.append(str(request.last_tool_results()))
            return Turn.say("The checkout fix is someone else's; I will not touch it.")

        with ModelApi(script) as model:
            self._runs("devops", model)
            started = time.monotonic()
            view = await self._run("devops", "Make checkout faster.")
            await self._until_session(
                "devops", lambda v: v.ended_at is not None, "the run finishing"
            )
            inc.seconds = time.monotonic() - started
        in_flight = [t.id for t in (view.brief.others_in_flight if view.brief else [])]
        owner = (await api.get_view(self.client, task)).assignee
        # What the agent's shell showed it: `tether` exits 3 on a refusal and says why.
        found = re.search(r"tether: ([^\\\n\"']+)", said[0]) if said else None
        refusal = found.group(1).strip() if found else ""
        refused = bool(said) and "Exit code 3" in said[0] and bool(refusal)
        inc.caught = refused and task in in_flight and owner == self.w.agent("coder")
        inc.what = (
            f"{devops}'s brief listed {task} as in flight; its own `tether task claim` was "
            f"refused ({refusal or 'NOT REFUSED'}), and the task stays {owner}'s"
        )
        inc.workflows = [constants.task_workflow_id(task), constants.session_workflow_id(devops)]

    # 4. The expired token: the session is blocked before Claude Code ever starts.
    async def expired_token(self, inc: Incident) -> None:
        security = self.w.agent("security")
        with ModelApi([Turn.bash("run-security-scan --all")]) as model:
            self._runs("security", model)
            started = time.monotonic()
            try:
                await self._run("security", "Scan the repositories.")
                refusal = ""
            except TetherError as exc:
                refusal = str(exc)
            inc.seconds = time.monotonic() - started
            asked = len(model.requests)
        gate = await api.session_gate(self.client, security)
        inc.caught = "blocked" in refusal and asked == 0 and gate is not None and bool(gate.deny)
        inc.what = (
            f"the session was blocked at its start ({refusal or 'NOT REFUSED'}); Claude Code "
            f"never started and the model was asked {asked} times"
        )
        inc.workflows = [constants.session_workflow_id(security)]

    # 5. Pseudo-work: four documents written with Claude Code's Write tool, and no post.
    async def pseudo_work(self, inc: Incident) -> None:
        marketing = self.w.agent("marketing")
        post = Artifact(kind="url", url=f"{self.w.api.url}/blog/launch-post")
        worktree = self._worktree(marketing)
        turns = [
            Turn(
                tools=[
                    (
                        "Write",
                        {
                            "file_path": str(worktree / "marketing" / f"strategy-v{n}.md"),
                            "content": f"# Launch strategy, take {n}\n",
                        },
                    )
                ]
            )
            for n in range(1, 5)
        ]
        turns.append(Turn.say("The launch strategy is complete."))
        with ModelApi(turns) as model:
            self._runs("marketing", model)
            await self._open_session("marketing", artifact=post)
            started = time.monotonic()
            await self._run("marketing", "Publish the launch post.")
            view = await self._until_session(
                "marketing", lambda v: v.ended_at is not None, "the end"
            )
            inc.seconds = time.monotonic() - started
        written = sorted(p.name for p in (worktree / "marketing").glob("strategy-v*.md"))
        summary = view.artifact_result.summary if view.artifact_result else "not checked"
        inc.caught = view.pseudo_work and len(written) == 4
        inc.what = (
            f"Claude Code wrote {len(written)} documents and said it was complete; the post "
            f"does not exist: flagged as pseudo-work ({summary})"
        )
        inc.workflows = [constants.session_workflow_id(marketing)]

    def _worktree(self, agent: str) -> Path:
        return self.w.folder / "tether-home" / "worktrees" / agent

    # 6. The loop: the fifth identical kubectl failure ends the process.
    async def loop(self, inc: Incident) -> None:
        devops = self.w.agent("devops")
        task = await self.ingress_task(devops)
        variants = KUBECTL_VARIANTS
        turns = [Turn.bash(variants[n % len(variants)].format(n=n)) for n in range(1, 24)]
        with ModelApi(turns) as model:
            self._runs("devops", model)
            started = time.monotonic()
            await self._run("devops", "Roll the ingress config out to prod.", task)
            await self._until_session(
                "devops",
                lambda v: v.run is not None and v.run.phase == "stopped",
                "the loop stopping the run",
            )
            inc.seconds = time.monotonic() - started
            await asyncio.sleep(1.0)  # anything the process still sent would arrive here
            asked = len(model.main_requests())
        view = await api.get_view(self.client, task)
        limit = self.w.config.thresholds.loop_limit
        inc.caught = asked == limit and view.state == TaskState.BLOCKED
        inc.what = (
            f"Claude Code ran `kubectl set` {asked} times of the 23 it was going to, each "
            f"Forbidden; Tether ended its process before it could ask the model again; task "
            f"{task} is {view.state}, lifted only by a founder-signed `tether task unblock {task}`"
        )
        inc.workflows = [constants.task_workflow_id(task), constants.session_workflow_id(devops)]

    # + The money: each model answer costs $1.51; the pause ends the process.
    async def runaway_cost(self, inc: Incident) -> None:
        analyst = self.w.agent("analyst")
        task = await self.research_task(analyst)
        turns = [
            Turn.bash(f"echo fetching competitor pricing page {n}", Usage(2_000, 100_000))
            for n in range(1, 9)
        ]
        with ModelApi(turns) as model:
            self._runs("analyst", model)
            started = time.monotonic()
            await self._run("analyst", "Research the competitors' pricing.", task)
            view = await self._until_session(
                "analyst",
                lambda v: v.run is not None and v.run.phase == "stopped",
                "the cost pause stopping the run",
            )
            inc.seconds = time.monotonic() - started
            await asyncio.sleep(1.0)
            asked = len(model.main_requests())
        task_view = await api.get_view(self.client, task)
        spent = view.governor.cost_usd
        inc.caught = task_view.state == TaskState.PAUSED and asked == 4
        inc.what = (
            f"Claude Code's answers cost $1.51 each; warned above $3.00, and at ${spent:.2f} "
            f"(ceiling $5.00) the task was paused and the process ended after {asked} model "
            f"requests; task {task} is {task_view.state} until `tether resume {task}`"
        )
        inc.workflows = [constants.task_workflow_id(task), constants.session_workflow_id(analyst)]


async def with_gateway(
    client: Client,
    store: Any,
    world: World,
    run: Callable[[str], Awaitable[Any]],
) -> Any:
    """Run `run(gateway_url)` with a gateway of the demo's own, whose key the demo's worker
    trusts (set in the demo's configuration)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tether.gateway.server import listening
    from tether.trust.seals import Signer, public_text

    signer = Signer("gateway", Ed25519PrivateKey.generate())
    world.config.gateway.public_key = public_text(signer.public_key)
    home = world.folder / "gateway"
    home.mkdir(exist_ok=True)
    async with listening(
        client, store, world.config, world.task_queue, home, "127.0.0.1:0", signer
    ) as url:
        return await run(url)
