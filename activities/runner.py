"""The agent's process, run by Tether (issue 15): a heartbeating activity that starts the agent's
runtime in the agent's own git worktree, reads its output as it comes, and ends its whole
process group when the workflow cancels it (a hold, the founder's stop, the session's end).

What the process gets: the agent's token for this run only (revoked when it ends), the gateway's
URL, the runner's `env` and the secrets its `secret_env` names, and PATH. Nothing else of the
worker's environment: no Temporal address, no database, no other secret. The process dies with
the worker (PR_SET_PDEATHSIG on Linux), so a killed worker leaves no agent running unwatched;
the run then resumes on another worker.

By default the process runs in its sandbox (tether/ops/sandbox.py): it holds placeholders for
the secrets, sees only its worktree and home, and reaches only the gateway, its model API and
its `network`. Each connection the sandbox refuses is audited (`egress_refusals`); the fifth in
one process reaches the founder's inbox. Where the host cannot sandbox, the run fails with the
reason; only `isolation = "none"` runs an agent unsandboxed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.checks import git
from activities.credentials import SecretUnavailable, read_secret
from activities.escalation import InvalidInput, escalating
from activities.secrets import known_secrets, redact
from tether import runtimes
from tether.config import Agent, Settings, TetherConfig
from tether.constants import session_workflow_id
from tether.contracts import (
    AgentLaunch,
    InboxItem,
    RunOutcome,
    RunPolicy,
    RuntimeUsage,
    TokenUsage,
)
from tether.errors import TetherError
from tether.hook.install import install
from tether.hook.transcript import COST_STATE_KEYS as MODEL_USAGE_KEYS
from tether.hook.transcript import USAGE_KEYS
from tether.hook.wire import GATEWAY_CA_ENV
from tether.names import worktree_branch
from tether.ops import sandbox
from tether.ops.runtime import die_with_parent
from tether.store import Store

# Often enough that the worker's heartbeat (throttled to 0.5 s) always has a fresh one.
HEARTBEAT_SECONDS = 0.25
# The runtime's own figures go to the session at most this often (and once more at the end).
USAGE_EVERY_SECONDS = 0.5
USAGE_SEND_TIMEOUT = 30.0
STDERR_KEPT = 4000
# Refused connections in one process before the founder is told: an agent probing for a way out.
EGRESS_INBOX_AFTER = 5
_API_STATUS = re.compile(r"\b(401|403)\b")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


class _UsageSender:
    """Tells the session what the runtime's output says about its spend and context, as it
    comes (at most every USAGE_EVERY_SECONDS; cumulative, so a lost or repeated one is
    harmless; the final figures travel with the outcome). The session may hold the agent in
    its answer and cancel this activity: the reader never waits for it."""

    def __init__(self, launch: AgentLaunch, stream: _Stream) -> None:
        self.launch = launch
        self.stream = stream
        self.due = asyncio.Event()
        self.handle = activity.client().get_workflow_handle(session_workflow_id(launch.agent))

    def wake(self) -> None:
        self.due.set()

    async def run(self) -> None:
        while True:
            await self.due.wait()
            self.due.clear()
            await self._send()
            await asyncio.sleep(USAGE_EVERY_SECONDS)

    async def _send(self) -> None:
        figures = self.stream.figures(self.launch)
        try:
            await asyncio.wait_for(
                self.handle.execute_update("runtime_usage", figures), USAGE_SEND_TIMEOUT
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the run goes on; the next figures are cumulative
            activity.logger.warning("runtime usage not delivered: %s", exc)


class RunnerActivities:
    def __init__(self, store: Store, config: TetherConfig, settings: Settings) -> None:
        self.store = store
        self.config = config
        self.settings = settings
        # A sandbox launcher started ahead of the next sandboxed agent (its first start makes
        # the first spare); ended by close().
        self.launchers = sandbox.Launchers(env=_launcher_env(), **_AGENT_PROCESS)

    async def close(self) -> None:
        """The worker is stopping: end the spare launcher."""
        await self.launchers.close()

    def _agent(self, name: str) -> Agent:
        for agent in self.config.agents:
            if agent.name == name:
                return agent
        raise InvalidInput(f"agent {name!r} is not in tether.toml: Tether cannot run it")

    async def worktree(self, agent: Agent) -> Path:
        """The agent's own worktree of its first repository, on branch tether/<agent>, made once
        and kept; an agent without a repository gets a plain folder."""
        path = self.settings.home / "worktrees" / agent.name
        if not agent.repositories:
            path.mkdir(parents=True, exist_ok=True)
            return path
        if (path / ".git").exists():
            return path
        repo = self.config.repositories[agent.repositories[0]]
        path.parent.mkdir(parents=True, exist_ok=True)
        base = repo.default_branch
        found = await git(repo.path, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
        if found.exit_code != 0:
            base = "HEAD"
        made = await git(
            repo.path, "worktree", "add", "-B", worktree_branch(agent.name), str(path), base
        )
        if made.exit_code != 0:
            said = made.stderr.head.decode(errors="replace").strip()
            raise InvalidInput(f"could not make {agent.name}'s worktree at {path}: {said}")
        return path

    def _argv(self, agent: Agent, launch: AgentLaunch, worktree: Path) -> list[str]:
        run = agent.run
        if agent.runtime == "command":
            values = {
                "prompt": launch.prompt,
                "session": launch.runtime_session,
                "agent": agent.name,
                "worktree": str(worktree),
            }
            try:
                return [part.format_map(values) for part in run.command]
            except (KeyError, ValueError, IndexError) as exc:
                raise InvalidInput(
                    f"agent {agent.name}'s run.command has a placeholder Tether does not fill "
                    f"({exc}): use {{prompt}}, {{session}}, {{agent}} or {{worktree}}, and "
                    "double other braces ({{ and }})"
                ) from exc
        argv = runtimes.get(agent.runtime).argv(
            run.binary,
            launch.runtime_session,
            launch.resume,
            launch.prompt,
            run.model,
            list(run.args),
        )
        if argv is None:
            raise InvalidInput(
                f"Tether does not start {agent.runtime} itself: give agent {agent.name} "
                'runtime = "command" and a run.command that starts it (its hooks from '
                f"`tether hooks install --runtime {agent.runtime}`)"
            )
        return argv

    def home(self, agent: Agent, sandboxed: bool) -> Path:
        """The process's HOME: in the sandbox its own (`$TETHER_HOME/agents/NAME`, or a
        `run.home` of its own); unsandboxed, `run.home` or the worker's."""
        if sandboxed:
            try:
                return sandbox.agent_home(self.settings.home, agent.name, agent.run.home)
            except TetherError as exc:
                raise InvalidInput(str(exc)) from exc
        if agent.run.home:
            return Path(agent.run.home).expanduser()
        return Path(os.environ.get("HOME") or Path.home())

    def _gateway_trust(self) -> dict[str, str]:
        """What the process verifies a TLS gateway by: the hooks' Python (TETHER_GATEWAY_CA)
        and a Node runtime's own HTTP hooks (NODE_EXTRA_CA_CERTS)."""
        trust = self.settings.gateway_trust
        if trust is None:
            return {}
        return {GATEWAY_CA_ENV: str(trust), "NODE_EXTRA_CA_CERTS": str(trust)}

    def _environment(
        self, agent: Agent, token: str, sandboxed: bool
    ) -> tuple[dict[str, str], list[str]]:
        """The process's environment, and the secret values in it (to redact its output)."""
        secrets = [token]
        # The agent's `tether` (the gateway's client) is this Tether's, first on its PATH.
        path = os.environ.get("PATH", "/usr/bin:/bin")
        here = str(Path(sys.executable).parent)
        env = {
            "PATH": path if here in path.split(os.pathsep) else f"{here}{os.pathsep}{path}",
            "HOME": str(self.home(agent, sandboxed)),
            "TETHER_AGENT": agent.name,
            "TETHER_GATEWAY_URL": self.settings.gateway_address,
            "TETHER_AGENT_TOKEN": token,
            "TETHER_HOME": str(self.settings.home / "agents" / agent.name),
            **self._gateway_trust(),
            **agent.run.env,
        }
        for var, name in agent.run.secret_env.items():
            try:
                value = read_secret(self.config.credentials[name])
            except SecretUnavailable as exc:
                raise InvalidInput(f"credential {name} (for {var}) {exc}") from exc
            env[var] = value
            secrets.append(value)
        Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
        return env, secrets

    @activity.defn
    @escalating
    async def run_policy(self, agent: str) -> RunPolicy:
        run = self._agent(agent).run
        return RunPolicy(
            crash_limit=run.crash_limit,
            restart_backoff_seconds=run.restart_backoff_seconds,
            credentials=sorted(set(run.secret_env.values())),
        )

    @activity.defn
    @escalating
    async def run_agent(self, launch: AgentLaunch) -> RunOutcome:
        """Run the agent's process to its end, heartbeating; cancelled, end its process group
        (SIGTERM, then SIGKILL after the grace period) before reporting the cancellation."""
        agent = self._agent(launch.agent)
        worktree = await self._ready(agent, agent.isolation == "sandbox")
        token = await self.store.mint_agent_token(agent.name, by="tether-runner")
        # Started, not waiting for a worker with room any more (what `tether status` shows).
        await self.store.process_started(agent.name, launch.process, agent.isolation)
        try:
            env, secrets = self._environment(agent, token, agent.isolation == "sandbox")
            return await self._run(agent, launch, worktree, env, secrets)
        finally:
            await self.store.revoke_token(token, by="tether-runner")

    async def _ready(self, agent: Agent, sandboxed: bool) -> Path:
        """Before an agent's process starts: the host can sandbox it (when it is to be), its
        worktree exists, and Claude Code's hooks point at the gateway."""
        if sandboxed:
            try:
                sandbox.require_sandbox(agent.name)
            except sandbox.SandboxUnavailable as exc:
                raise InvalidInput(str(exc)) from exc
        worktree = await self.worktree(agent)
        if agent.runtime == "claude-code":
            install(
                worktree,
                agent.name,
                sys.executable,
                agent.fail_closed,
                self.settings.gateway_address,
            )
        return worktree

    async def by_hand(self, name: str, argv: list[str], terminal: dict[str, str]) -> int:
        """`tether sandbox AGENT -- COMMAND`: the founder's own command (an interactive
        `claude`, a shell) in the agent's sandbox, on the founder's terminal, with a token of
        the agent's for as long as it runs; its exit status. `terminal`: the variables of the
        founder's terminal the command may see (TERM, ...)."""
        agent = self._agent(name)
        worktree = await self._ready(agent, True)
        token = await self.store.mint_agent_token(agent.name, by="tether sandbox")
        process = f"by-hand:{os.getpid()}"
        launcher = None
        try:
            env, _ = self._environment(agent, token, True)
            plan = self.sandboxed(agent, argv, worktree, {**env, **terminal})
            try:
                launcher = await sandbox.start_launcher(env=_launcher_env())
            except BaseException:
                plan.discard()
                raise
            await launcher.send(plan)
            audit = asyncio.create_task(self._refusals(agent, process, launcher.events))
            code = await launcher.process.wait()
            await audit
            return code
        finally:
            if launcher is not None:
                launcher.done()
            await self.store.revoke_token(token, by="tether sandbox")

    async def _run(
        self,
        agent: Agent,
        launch: AgentLaunch,
        worktree: Path,
        env: dict[str, str],
        secrets: list[str],
    ) -> RunOutcome:
        argv = self._argv(agent, launch, worktree)
        launcher = None
        try:
            if agent.isolation == "sandbox":
                plan = self.sandboxed(agent, argv, worktree, env)
                try:
                    launcher = await self.launchers.take()
                except BaseException:
                    plan.discard()
                    raise
                await launcher.send(plan)
                proc = launcher.process
            else:
                proc = await asyncio.create_subprocess_exec(
                    *argv, cwd=worktree, env=env, **_AGENT_PROCESS
                )
        except OSError as exc:
            raise InvalidInput(
                f"could not start {agent.name}'s runtime ({argv[0]}): {exc.strerror or exc}"
            ) from exc
        try:
            return await self._supervise(agent, launch, proc, secrets, launcher)
        finally:
            if launcher is not None:
                launcher.done()

    def sandboxed(
        self, agent: Agent, argv: list[str], worktree: Path, env: dict[str, str]
    ) -> sandbox.Plan:
        """The launch plan of `argv` in the agent's sandbox."""
        repositories = [Path(self.config.repositories[r].path) for r in agent.repositories]
        found = shutil.which(argv[0], path=env.get("PATH")) if argv else None
        if not found:
            raise InvalidInput(
                f"could not start {agent.name}'s runtime ({argv[0] if argv else ''}): "
                "No such file or directory"
            )
        walls = sandbox.walls(
            agent=agent.name,
            runtime=agent.runtime,
            worktree=worktree,
            home=Path(env["HOME"]),
            tether_home=self.settings.home,
            gateway_url=self.settings.gateway_address,
            repositories=repositories,
            network=agent.network,
            env=env,
            secret_names=list(agent.run.secret_env),
            gateway_ca=self.settings.gateway_trust,
        )
        # The runtime's own files, wherever it is installed (the worker's HOME is hidden).
        walls.readable.append(Path(found).resolve().parent)
        return sandbox.prepare(walls, [found, *argv[1:]], worktree, env)

    async def _supervise(
        self,
        agent: Agent,
        launch: AgentLaunch,
        proc: asyncio.subprocess.Process,
        secrets: list[str],
        walled: sandbox.Launcher | None,
    ) -> RunOutcome:
        stream = _Stream()
        stderr = bytearray()
        reads_usage = agent.run.reads_usage(agent.runtime)
        # Claude Code's hooks report each tool call's usage as it happens: its own figures add
        # only what no hook saw (the last answer, a compaction's request), and travel with the
        # outcome. A runtime without hooks is told about as it goes.
        live = reads_usage and agent.runtime != "claude-code"
        usage = _UsageSender(launch, stream) if live else None

        async def read_out() -> None:
            assert proc.stdout is not None
            async for line in proc.stdout:
                stream.feed(line)
                if usage is not None and stream.changed:
                    usage.wake()
                if stream.refused is not None:
                    # The model API refused the credential: Claude Code would retry it ten
                    # times over minutes. The first refusal ends the process.
                    await _end_group(proc, 0)
                    return

        async def read_err() -> None:
            assert proc.stderr is not None
            while chunk := await proc.stderr.read(4096):
                stderr.extend(chunk)
                del stderr[:-STDERR_KEPT]

        async def watch_session() -> None:
            # The process belongs to its session: one closed from outside (terminated in the
            # Web UI, which ends no child it abandoned on purpose) ends it too.
            while True:
                await asyncio.sleep(self.settings.session_check_seconds)
                if not await _session_open(session_workflow_id(agent.name)):
                    activity.logger.warning(
                        "the session of %s is not open any more: its process is ended", agent.name
                    )
                    await _end_group(proc, agent.run.stop_grace_seconds)
                    return

        async def beat() -> None:
            while True:
                activity.heartbeat(
                    {"pid": proc.pid, "events": stream.events, "cost_usd": stream.cost_usd}
                )
                await asyncio.sleep(HEARTBEAT_SECONDS)

        readers = asyncio.gather(
            read_out(),
            read_err(),
            *([self._refusals(agent, launch.process, walled.events)] if walled else []),
        )
        beating = asyncio.create_task(beat())
        watching = asyncio.create_task(watch_session())
        sending = asyncio.create_task(usage.run()) if usage is not None else None
        try:
            await readers
            code = await proc.wait()
        except asyncio.CancelledError:
            await _end_group(proc, agent.run.stop_grace_seconds)
            readers.cancel()
            raise
        finally:
            beating.cancel()
            watching.cancel()
            if sending is not None:
                sending.cancel()
        hidden = {f"secret {i}": s for i, s in enumerate(secrets)}
        tail = redact(stderr.decode(errors="replace"), {**known_secrets(self.config), **hidden})
        outcome = stream.outcome(code)
        outcome.stderr_tail = tail[-STDERR_KEPT:]
        if reads_usage:
            # The final figures (the result's own price) travel with the outcome.
            outcome.usage = stream.figures(launch)
        return outcome

    async def _refusals(self, agent: Agent, process: str, events: int) -> None:
        """What the sandbox refused, as the launcher tells it: each audited; the fifth in this
        process posts one item to the founder's inbox."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(events), "rb", 0)
        )
        count = 0
        try:
            async for line in reader:
                found = sandbox.refusal(line)
                if found is None:
                    continue
                host, port, detail = found
                count += 1
                await self.store.record_egress_refusal(agent.name, process, host, port, detail)
                activity.logger.warning(
                    "sandbox refused %s a connection to %s:%s", agent.name, host, port
                )
                if count == EGRESS_INBOX_AFTER:
                    await self._tell_founder_of_probing(agent.name, process, host, port)
        finally:
            transport.close()

    async def _tell_founder_of_probing(
        self, agent: str, process: str, host: str, port: int | None
    ) -> None:
        from activities.notify import notify

        item = InboxItem(
            key=f"egress:{agent}:{process}",
            kind="egress_refused",
            subject=agent,
            title=f"{agent}'s sandbox refused {EGRESS_INBOX_AFTER} connections in one run "
            f"(the last to {host}:{port}): it may be looking for a way out",
            detail={
                "agent": agent,
                "process": process,
                "see": f"tether session show {agent}",
            },
        )
        await notify(self.store, self.config.notifications, item)


# How an agent's process is started, sandboxed or not: its output read by the runner, in a
# process group of its own (ended as one), killed when the worker dies.
_AGENT_PROCESS: dict[str, Any] = {
    "stdin": asyncio.subprocess.DEVNULL,
    "stdout": asyncio.subprocess.PIPE,
    "stderr": asyncio.subprocess.PIPE,
    "start_new_session": True,
    "preexec_fn": die_with_parent,
}


async def _session_open(session_id: str) -> bool:
    """Whether the session's workflow (its latest run) is still running."""
    try:
        found = await activity.client().get_workflow_handle(session_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return found.status == WorkflowExecutionStatus.RUNNING


def _launcher_env() -> dict[str, str]:
    """The sandbox launcher's own environment: PATH to find node, bwrap and socat. The agent's
    is in its plan."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


async def _end_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM to the whole process group, SIGKILL after `grace` seconds if it still runs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while proc.returncode is None and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


class _Stream:
    """Claude Code's stream-json, line by line: the assistant's usage per message and the final
    result. Lines that are not JSON (another runtime's output) are counted and ignored."""

    def __init__(self) -> None:
        self.events = 0
        self.result: dict[str, Any] | None = None
        self.cost_usd: float | None = None
        # A 401/403 the model API answered (Claude Code's `system/api_retry` event).
        self.refused: dict[str, Any] | None = None
        # Tokens per model, each assistant message once (streaming and parallel tool calls
        # repeat one message's usage); the result's modelUsage, when larger, wins.
        self.usage: dict[str, dict[str, int]] = {}
        self.seen: set[str] = set()
        self.context_tokens: int | None = None
        self.context_window: int | None = None
        # New figures since the session was last told.
        self.changed = False

    def feed(self, line: bytes) -> None:
        self.events += 1
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if (
            event.get("type") == "system"
            and event.get("subtype") == "api_retry"
            and event.get("error_status") in (401, 403)
        ):
            self.refused = event
        if event.get("type") == "assistant":
            self._assistant(event)
        if event.get("type") == "result":
            self.result = event
            cost = event.get("total_cost_usd")
            if isinstance(cost, int | float):
                self.cost_usd = float(cost)
            self._model_usage(event.get("modelUsage"))
            self.changed = True

    def _assistant(self, event: dict[str, Any]) -> None:
        message = event.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
            return
        counts = {name: _count(message["usage"].get(key)) for key, name in USAGE_KEYS}
        if event.get("parent_tool_use_id") is None:
            # The main thread fills the context; a subagent's messages only cost.
            self.context_tokens = counts["input"] + counts["cache_read"] + counts["cache_write"]
            self.changed = True
        key = str(message.get("id") or event.get("uuid") or "")
        if key in self.seen:
            return
        if key:
            self.seen.add(key)
        totals = self.usage.setdefault(str(message.get("model") or "unknown"), {})
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
        self.changed = True

    def _model_usage(self, found: Any) -> None:
        """The result's cumulative per-model counts: they include calls no assistant message
        showed (a compaction's summary)."""
        if not isinstance(found, dict):
            return
        for model, counts in found.items():
            if not isinstance(counts, dict):
                continue
            totals = self.usage.setdefault(str(model), {})
            for key, name in MODEL_USAGE_KEYS:
                totals[name] = max(totals.get(name, 0), _count(counts.get(key)))
            window = counts.get("contextWindow")
            if isinstance(window, int) and window > 0:
                self.context_window = max(self.context_window or 0, window)

    def figures(self, launch: AgentLaunch) -> RuntimeUsage:
        self.changed = False
        return RuntimeUsage(
            runtime_session=launch.runtime_session,
            process=launch.process,
            usage={m: TokenUsage.model_validate(c) for m, c in self.usage.items()},
            cost_usd=self.cost_usd,
            context_tokens=self.context_tokens,
            context_window=self.context_window,
        )

    def outcome(self, code: int) -> RunOutcome:
        if self.refused is not None:
            refused = int(self.refused["error_status"])
            what = self.refused.get("error") or "refused"
            return RunOutcome(
                exit_code=code,
                is_error=True,
                api_status=refused,
                cost_usd=self.cost_usd,
                summary=f"{refused} {what}: stopped at the first refusal (Claude Code would "
                f"retry it {self.refused.get('max_retries', 'several')} times)",
            )
        r = self.result
        if r is None:
            return RunOutcome(exit_code=code, summary=f"exited with code {code}, no result")
        text = str(r.get("result") or r.get("subtype") or "")
        is_error = bool(r.get("is_error"))
        status = _API_STATUS.search(text) if is_error else None
        turns = r.get("num_turns")
        return RunOutcome(
            exit_code=code,
            result=str(r.get("subtype") or ""),
            is_error=is_error,
            api_status=int(status.group(1)) if status else None,
            cost_usd=self.cost_usd,
            turns=turns if isinstance(turns, int) else None,
            summary=text[:500],
        )
