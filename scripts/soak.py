"""Soak: an eleven-agent team on a throwaway stack for hours, with failures injected (issue 31).

The stack is what `tether up` runs, each part its own process: PostgreSQL (embedded), the
Temporal dev server (its record in a SQLite file), a worker process (`worker.py`) and the gateway
(`tether gateway`). This process is the team and the founder:
- each agent starts its session with SessionStart, then makes a tool call every `--call-every`
  seconds (jittered): PreToolUse, a line in its transcript, PostToolUse (the report);
- a task every `--task-every` seconds, created, claimed by the next agent in turn and submitted
  (its check runs) a few minutes later, through the Python client as `tether task` does;
- a deployment every `--deploy-every` seconds: a commit, the request, the founder's signed tag
  and approval, the rollout and its health check;
- every `--fail-every` seconds a failure, in turn: the worker killed (SIGKILL, started again
  after 5 s), PostgreSQL restarted (a fast shutdown, started again after 5 s).

Every minute it samples the worker's, the gateway's, PostgreSQL's and Temporal's resident
memory and open file descriptors, the reports' p50 and p99 latency that minute, the sessions'
history lengths and Temporal's database size, as JSON Lines in `--out`/samples.jsonl, and at the
end plots them (`soak.png`, failures marked) and checks that every tool call the agents made
was counted exactly once (the rows in PostgreSQL's tool-call log against the calls sent; a
report that got no answer during a failure is sent again with the next one, under its update id).

    .venv/bin/python scripts/soak.py [--minutes 120] [--out soak-runs/NAME]

Prints the figures issue 31 asks for: memory at the end against its level after the first
15 minutes (goal: within 10%), report p99 in the last 15 minutes against the first 15 (goal:
within 1.2x), reports lost or counted twice (goal: 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_hooks import figures, transcript_line  # noqa: E402
from scripts.throwaway import Throwaway, throwaway_stack  # noqa: E402
from tests.support.deploy import ROLLOUT, VersionService, with_remote  # noqa: E402
from tests.support.helpers import commit_file, git, make_repo  # noqa: E402
from tether import client as api  # noqa: E402
from tether import constants  # noqa: E402
from tether.contracts import DeployRequest, ShellCheck, TaskSpec  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from tether.ops.stack import free_port  # noqa: E402
from tether.store import connect_pool  # noqa: E402
from tether.trust.signing import generate, load_private, sign  # noqa: E402
from workflows.deployment import DeploymentWorkflow  # noqa: E402

AGENTS = [
    "coder-1",
    "coder-2",
    "coder-3",
    "reviewer",
    "devops",
    "security",
    "qa",
    "docs",
    "marketing",
    "support",
    "data",
]
SERVICE = "web"


@dataclass
class Run:
    stack: Throwaway
    out: Path
    queue: str
    gateway_url: str
    tokens: dict[str, str]
    transcripts: dict[str, Path]
    project: Path
    started: float = field(default_factory=time.monotonic)
    worker: asyncio.subprocess.Process | None = None
    gateway: asyncio.subprocess.Process | None = None
    # (monotonic seconds, report latency) of every PostToolUse answered.
    reports: list[tuple[float, float]] = field(default_factory=list)
    # Tool calls sent, per agent (each made a PostToolUse, answered or not).
    sent: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tasks_done: int = 0
    deployments_done: int = 0
    stopping: bool = False

    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds`, or less when the run stops; whether it goes on."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), seconds)
        return not self.stopping

    def stop(self) -> None:
        self.stopping = True
        self.stopped.set()

    def minute(self) -> float:
        return (time.monotonic() - self.started) / 60


# -- the processes --------------------------------------------------------------------------


async def start_worker(run: Run) -> None:
    log = run.out / "worker.log"
    with log.open("ab") as out:
        run.worker = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "worker.py"),
            env=run.stack.worker_env(run.queue),
            stderr=out,
            stdout=out,
        )
    for _ in range(600):
        if b"worker polling" in log.read_bytes()[-20000:]:
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"the worker did not start: see {log}")


async def start_gateway(run: Run, bind: str) -> None:
    env = run.stack.worker_env(run.queue, TETHER_GATEWAY_BIND=bind)
    with (run.out / "gateway.log").open("ab") as err:
        run.gateway = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tether",
            "gateway",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    assert run.gateway.stdout is not None
    line = await asyncio.wait_for(run.gateway.stdout.readline(), 60)
    if b"listening on" not in line:
        raise SystemExit(f"the gateway did not start: {line!r}")


def postgres_pids(stack: Throwaway) -> list[int]:
    """The postmaster and its children."""
    try:
        main = int((stack.postgres.data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = [main]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = (entry / "stat").read_text()
                if int(raw[raw.rindex(")") + 2 :].split()[1]) == main:
                    pids.append(int(entry.name))
    return pids


def temporal_pids() -> list[int]:
    """The Temporal dev server this process started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = (entry / "stat").read_text()
                name = raw[raw.index("(") + 1 : raw.rindex(")")]
                parent = int(raw[raw.rindex(")") + 2 :].split()[1])
                if name.startswith("temporal") and parent == os.getpid():
                    found.append(int(entry.name))
    return found


def rss_and_fds(pids: list[int]) -> tuple[float, int]:
    """Resident MiB and open file descriptors, summed over `pids`."""
    page = os.sysconf("SC_PAGE_SIZE")
    rss, fds = 0, 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
            fds += len(os.listdir(f"/proc/{pid}/fd"))
    return rss / 2**20, fds


# -- the team -------------------------------------------------------------------------------


class Agent:
    """One agent's runtime, as far as the gateway sees it: its hooks, over HTTP."""

    def __init__(self, run: Run, http: Any, name: str) -> None:
        self.run, self.http, self.name = run, http, name
        self.headers = {"Authorization": f"Bearer {run.tokens[name]}"}
        self.transcript = run.transcripts[name]
        self.n = 0
        # When each call was made (minutes into the run), and which got no answer at first.
        self.sent_at: dict[int, float] = {}
        self.unanswered: set[int] = set()

    def payload(self, event: str, **fields: object) -> dict[str, Any]:
        return {
            "hook_event_name": event,
            "session_id": f"cc-{self.name}",
            "transcript_path": str(self.transcript),
            "cwd": str(self.run.project),
            **fields,
        }

    async def hook(self, event: str, body: dict[str, Any]) -> tuple[float, bool]:
        run = self.run
        t0 = time.monotonic()
        try:
            answer = await self.http.post(
                f"/hooks/claude-code/{event}",
                params={"agent": self.name},
                json=body,
                headers=self.headers,
            )
        except Exception as exc:
            run.errors.append(f"{run.minute():.1f} {event} {self.name}: {exc!r}")
            return time.monotonic() - t0, False
        ok = answer.status_code == 200 and not answer.headers.get("x-tether-trouble")
        if not ok:
            run.errors.append(
                f"{run.minute():.1f} {event} {self.name}: HTTP {answer.status_code} "
                f"{answer.headers.get('x-tether-trouble', '')} {answer.text[:160]}"
            )
        return time.monotonic() - t0, ok

    async def start(self) -> None:
        await self.hook("SessionStart", self.payload("SessionStart", source="startup"))

    async def tool_call(self) -> None:
        """PreToolUse, the call's line in the transcript, PostToolUse (the report)."""
        run, n = self.run, self.n
        self.n += 1
        bash = {"tool_name": "Bash", "tool_input": {"command": f"make step-{self.name}-{n}"}}
        await self.hook("PreToolUse", self.payload("PreToolUse", **bash))
        use = f"toolu_{self.name}_{n}"
        with self.transcript.open("a") as out:
            out.write(transcript_line(1000 + n, use))
        run.sent[self.name] = run.sent.get(self.name, 0) + 1
        self.sent_at[n] = run.minute()
        done = self.payload(
            "PostToolUse", **bash, tool_use_id=use, tool_response={"stdout": "ok", "stderr": ""}
        )
        took, ok = await self.hook("PostToolUse", done)
        if ok:
            run.reports.append((time.monotonic(), took))
        else:
            run.unanswered += 1
            self.unanswered.add(n)

    async def end(self) -> None:
        await self.hook("SessionEnd", self.payload("SessionEnd", reason="logout"))

    async def work(self, call_every: float, seed: int) -> None:
        rng = random.Random(seed)
        await asyncio.sleep(rng.uniform(0, call_every))
        await self.start()
        while not self.run.stopping:
            await self.tool_call()
            await self.run.pause(rng.uniform(0.5, 1.5) * call_every)


async def tasks_loop(run: Run, task_every: float) -> None:
    """A task every `task_every` s: created and claimed now, submitted (checked) two to four
    times `task_every` later."""
    client = run.stack.client
    n = 0
    pending: list[asyncio.Task[None]] = []

    async def lifecycle(task_id: str, agent: str, work: float) -> None:
        try:
            spec = TaskSpec(
                id=task_id, title=f"Soak task {task_id}", checks=[ShellCheck(command="true")]
            )
            await api.create_task(client, run.queue, spec)
            await api.claim_task(client, task_id, agent)
            await asyncio.sleep(work)
            result = await api.submit_task(client, task_id, agent, "done")
            if result.done:
                run.tasks_done += 1
            else:
                run.errors.append(f"{run.minute():.1f} task {task_id} refused: {result}")
        except Exception as exc:
            run.errors.append(f"{run.minute():.1f} task {task_id}: {exc!r}")

    rng = random.Random(7)
    while not run.stopping:
        agent = AGENTS[n % len(AGENTS)]
        pending.append(
            asyncio.create_task(lifecycle(f"soak-{n}", agent, rng.uniform(2, 4) * task_every))
        )
        n += 1
        await run.pause(task_every)
    await asyncio.gather(*pending)


async def deploy_loop(run: Run, deploy_every: float, repo: Path, key_path: Path) -> None:
    key = load_private(key_path)
    n = 0
    while not run.stopping:
        if not await run.pause(min(deploy_every, 300) if n == 0 else deploy_every):
            return
        n += 1
        try:
            await asyncio.to_thread(
                commit_file, repo, "app.py", f"VERSION = {n + 1}\n", f"v{n + 1}"
            )
            await asyncio.to_thread(git, repo, "push", "-q", "origin", "HEAD")
            request = DeployRequest.model_validate(
                {"service": SERVICE, "ref": "main", "agent": "devops", "environment": "staging"}
            )
            view = await api.request_deploy(run.stack.client, run.queue, request)
            tag, _ = await asyncio.to_thread(api.tag_approval, view, repo, "origin", key, "founder")
            approval = api.prepare_approval(
                view,
                decision="approve",
                by="founder",
                reason="soak",
                ttl=None,
                now=datetime.now(UTC),
                tag=tag,
            )
            verdict = await api.submit_approval(
                run.stack.client, view.deployment_id, sign(approval, key).model_dump(mode="json")
            )
            if not verdict.accepted:
                run.errors.append(f"{run.minute():.1f} approval refused: {verdict.reason}")
                continue
            handle = run.stack.client.get_workflow_handle_for(
                DeploymentWorkflow.run, view.deployment_id
            )
            final = await asyncio.wait_for(handle.result(), 600)
            if final.state == "done":
                run.deployments_done += 1
            else:
                run.errors.append(f"{run.minute():.1f} deployment ended {final.state}")
        except Exception as exc:
            run.errors.append(f"{run.minute():.1f} deployment {n}: {exc!r}")


async def failures_loop(run: Run, fail_every: float) -> None:
    n = 0
    while not run.stopping:
        if not await run.pause(fail_every):
            return
        if n % 2 == 0:
            run.failures.append((run.minute(), "worker killed"))
            assert run.worker is not None
            run.worker.send_signal(signal.SIGKILL)
            await run.worker.wait()
            await asyncio.sleep(5)
            await start_worker(run)
        else:
            run.failures.append((run.minute(), "PostgreSQL restarted"))
            await asyncio.to_thread(run.stack.postgres.stop)
            await asyncio.sleep(5)
            await asyncio.to_thread(run.stack.postgres.start)
        n += 1


async def history_length(run: Run, agent: str) -> int:
    """The events in the agent's session's current run (0 when it cannot say within 5 s)."""
    handle = run.stack.client.get_workflow_handle(constants.session_workflow_id(agent))
    try:
        described = await asyncio.wait_for(handle.describe(), 5)
    except Exception:
        return 0
    return int(described.raw_description.workflow_execution_info.history_length)


async def sample_loop(run: Run) -> None:
    samples = run.out / "samples.jsonl"
    last = time.monotonic()
    while await run.pause(60):
        now = time.monotonic()
        minute = [took for at, took in run.reports if last < at <= now]
        last = now
        p50, p99 = figures(minute)
        lengths = [n for n in await asyncio.gather(*(history_length(run, a) for a in AGENTS)) if n]
        assert run.worker is not None and run.gateway is not None
        worker = rss_and_fds([run.worker.pid])
        gateway = rss_and_fds([run.gateway.pid])
        postgres = rss_and_fds(postgres_pids(run.stack))
        temporal = rss_and_fds(temporal_pids())
        db = run.stack.temporal_db
        row = {
            "minute": round(run.minute(), 2),
            "worker_mib": worker[0],
            "worker_fds": worker[1],
            "gateway_mib": gateway[0],
            "gateway_fds": gateway[1],
            "postgres_mib": postgres[0],
            "postgres_fds": postgres[1],
            "temporal_mib": temporal[0],
            "temporal_fds": temporal[1],
            "reports": len(minute),
            "report_p50_ms": p50,
            "report_p99_ms": p99,
            "history_max": max(lengths, default=0),
            "history_sum": sum(lengths),
            "temporal_db_mib": (db.stat().st_size / 2**20) if db and db.exists() else 0,
            "tasks_done": run.tasks_done,
            "deployments_done": run.deployments_done,
            "unanswered": run.unanswered,
        }
        with samples.open("a") as out:
            out.write(json.dumps(row) + "\n")
        print(
            f"[{row['minute']:6.1f} min] worker {worker[0]:.0f} MiB/{worker[1]} fds, gateway "
            f"{gateway[0]:.0f} MiB/{gateway[1]} fds, reports {len(minute)} p50 {p50:.0f} p99 "
            f"{p99:.0f} ms, history max {row['history_max']}, tasks {run.tasks_done}, "
            f"deployments {run.deployments_done}, unanswered {run.unanswered}",
            flush=True,
        )


# -- the check and the plot -----------------------------------------------------------------


async def counted(run: Run, team: list[Agent]) -> dict[str, int]:
    """Tool-call rows in PostgreSQL per agent (each unique by session and sequence), once they
    stop changing (the sessions write their calls behind their reports); the calls missing or
    written twice are named in the run's errors, with when they were made."""
    pool = await connect_pool(run.stack.database_url)
    try:
        found: dict[str, int] = {}
        for _ in range(30):
            rows = await pool.fetch("SELECT agent, count(*) AS n FROM tool_calls GROUP BY agent")
            now = {r["agent"]: int(r["n"]) for r in rows}
            if now == found:
                break
            found = now
            await asyncio.sleep(10)
        rows = await pool.fetch("SELECT agent, action, signature FROM tool_calls")
        seen: dict[str, list[int]] = {}
        for r in rows:
            text = f"{r['action']} {r['signature']}"
            marker = f"step-{r['agent']}-"
            if marker in text:
                tail = text.split(marker, 1)[1]
                digits = "".join(itertools.takewhile(str.isdigit, tail))
                if digits:
                    seen.setdefault(r["agent"], []).append(int(digits))
        for agent in team:
            got = seen.get(agent.name, [])
            missing = sorted(set(agent.sent_at) - set(got))
            twice = sorted({n for n in got if got.count(n) > 1})
            for n in missing:
                late = " (unanswered at first)" if n in agent.unanswered else ""
                run.errors.append(
                    f"missing: {agent.name} call {n}, made at {agent.sent_at[n]:.2f} min{late}"
                )
            for n in twice:
                run.errors.append(f"twice: {agent.name} call {n}")
        if not seen:
            run.errors.append(f"no call named in the log's actions; a row: {dict(rows[0])}")
        return found
    finally:
        await pool.close()


def plot(out: Path, rows: list[dict[str, Any]], failures: list[tuple[float, str]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["minute"] for r in rows]
    fig, axes = plt.subplots(4, 1, figsize=(10, 12), sharex=True)
    panels = [
        ("resident memory (MiB)", ["worker_mib", "gateway_mib", "postgres_mib", "temporal_mib"]),
        ("open file descriptors", ["worker_fds", "gateway_fds", "postgres_fds", "temporal_fds"]),
        ("report latency (ms)", ["report_p50_ms", "report_p99_ms"]),
        ("history length (events)", ["history_max"]),
    ]
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            ax.plot(minutes, [r[key] for r in rows], label=key)
        for at, what in failures:
            ax.axvline(at, color="red" if "worker" in what else "purple", alpha=0.3, lw=1)
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes (red: worker killed, purple: PostgreSQL restarted)")
    fig.suptitle(f"Tether soak: {len(AGENTS)} agents, {minutes[-1] if minutes else 0:.0f} minutes")
    fig.tight_layout()
    path = out / "soak.png"
    fig.savefig(path, dpi=90)
    return path


def window(rows: list[dict[str, Any]], start: float, end: float, key: str) -> list[float]:
    return [r[key] for r in rows if start <= r["minute"] < end and r[key] == r[key]]


def summary(run: Run, rows: list[dict[str, Any]], found: dict[str, int], minutes: float) -> str:
    lines = [f"Soak: {len(AGENTS)} agents for {minutes:.0f} minutes on {os.cpu_count()} cores."]
    lines.append(
        f"  tool calls sent {sum(run.sent.values())}, answered {len(run.reports)}, "
        f"unanswered at first {run.unanswered}; tasks done {run.tasks_done}, deployments "
        f"{run.deployments_done}; failures injected {len(run.failures)}"
    )
    lost = sum(max(0, run.sent.get(a, 0) - found.get(a, 0)) for a in AGENTS)
    double = sum(max(0, found.get(a, 0) - run.sent.get(a, 0)) for a in AGENTS)
    lines.append(f"  reports lost {lost}, counted twice {double} (goal: 0 and 0)")
    early = [t for at, t in run.reports if (at - run.started) / 60 < 15]
    late = [t for at, t in run.reports if (at - run.started) / 60 >= minutes - 15]
    p99_early, p99_late = figures(early)[1], figures(late)[1]
    lines.append(
        f"  report p99: first 15 min {p99_early:.0f} ms, last 15 min {p99_late:.0f} ms, "
        f"{p99_late / p99_early:.2f}x (goal <= 1.2x)"
    )
    for who in ("worker", "gateway", "postgres", "temporal"):
        at15 = window(rows, 14, 17, f"{who}_mib")
        end = window(rows, minutes - 3, minutes + 1, f"{who}_mib")
        if at15 and end:
            a, b = statistics.median(at15), statistics.median(end)
            lines.append(
                f"  {who} memory: {a:.0f} MiB at 15 min, {b:.0f} MiB at the end, "
                f"{(b / a - 1) * 100:+.1f}% (goal within 10% for the worker and the gateway)"
            )
    # A worker killed and started again replays every session's history at once: its memory
    # after a restart is its own level, not the one before. Creep shows as the same phase of
    # each worker process's life growing from one process to the next.
    starts = [0.0] + [at for at, what in run.failures if "worker" in what]
    phase = []
    for start in starts:
        found = window(rows, start + 9.5, start + 11.5, "worker_mib")
        if found:
            phase.append(f"{statistics.median(found):.0f} MiB (started at {start:.0f} min)")
    if phase:
        lines.append("  worker memory 10 minutes into each worker process: " + ", ".join(phase))
    if rows:
        lines.append(
            f"  history length max {max(r['history_max'] for r in rows)}; Temporal's database "
            f"{rows[-1]['temporal_db_mib']:.1f} MiB at the end"
        )
    for at, what in run.failures:
        lines.append(f"  failure at {at:.1f} min: {what}")
    if run.errors:
        lines.append(f"  {len(run.errors)} answers that were not OK (the first ten):")
        lines += [f"    {e}" for e in run.errors[:10]]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------


def toml(run_dir: Path, repo: Path, public: str, site: VersionService) -> str:
    """The team's tether.toml: eleven agents, the founder's key, one service to deploy."""
    script = run_dir / "rollout.py"
    script.write_text(ROLLOUT)
    state, log = run_dir / "served-version", run_dir / "rollouts.log"
    rollout = f"{sys.executable} {script} {state} {log} 1"
    agents = "".join(f'[[agents]]\nname = "{a}"\n\n' for a in AGENTS)
    return f"""{agents}[founder]
public_key = "{public}"

[repositories.app]
path = "{repo}"

[services.{SERVICE}]
repository = "app"
rollout = "{rollout}"
cooldown_minutes = 0

[[services.{SERVICE}.health_checks]]
kind = "http"
url = "{site.url}"
retry_for_seconds = 5
retry_interval_seconds = 0.5
"""


@contextlib.asynccontextmanager
async def stack_run(out: Path) -> AsyncIterator[tuple[Run, Path, Path]]:

    async with throwaway_stack(temporal_db=True) as stack:
        tmp = stack.folder
        repo = make_repo(tmp / "app")
        commit_file(repo, "app.py", "VERSION = 1\n", "v1")
        with_remote(repo, tmp / "remote.git")
        key_path, public = generate(tmp / "founder")
        site = VersionService(tmp / "served-version")
        text = toml(tmp, repo, public, site)
        (tmp / "tether.toml").write_text(text)
        project = tmp / "project"
        project.mkdir()
        tokens, transcripts = {}, {}
        for agent in AGENTS:
            tokens[agent] = await stack.store.mint_agent_token(agent, "founder")
            transcripts[agent] = tmp / "transcripts" / f"{agent}.jsonl"
            transcripts[agent].parent.mkdir(exist_ok=True)
            transcripts[agent].write_text("".join(transcript_line(i) for i in range(20)))
        bind = f"127.0.0.1:{free_port()}"
        run = Run(
            stack,
            out,
            f"soak-{uuid.uuid4().hex[:6]}",
            f"http://{bind}",
            tokens,
            transcripts,
            project,
        )
        try:
            await start_worker(run)
            await start_gateway(run, bind)
            yield run, repo, key_path
        finally:
            site.stop()
            for proc in (run.gateway, run.worker):
                if proc is not None and proc.returncode is None:
                    proc.terminate()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(proc.wait(), 20)
                    if proc.returncode is None:
                        proc.kill()


async def main() -> int:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0, help="how long the team works")
    parser.add_argument(
        "--call-every", type=float, default=4.0, help="seconds between an agent's tool calls"
    )
    parser.add_argument("--task-every", type=float, default=60.0, help="seconds between new tasks")
    parser.add_argument(
        "--deploy-every", type=float, default=3600.0, help="seconds between deployments"
    )
    parser.add_argument("--fail-every", type=float, default=1200.0, help="seconds between failures")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M")
    parser.add_argument("--out", type=Path, default=ROOT / "soak-runs" / stamp)
    parser.add_argument(
        "--templates", type=Path, help="end the sessions and keep what the run wrote (year.py)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    async with stack_run(args.out) as (run, repo, key_path):
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=run.gateway_url, timeout=300, limits=limits) as http:
            run.started = time.monotonic()
            team = [Agent(run, http, a) for a in AGENTS]
            loops = [
                asyncio.create_task(agent.work(args.call_every, i)) for i, agent in enumerate(team)
            ]
            loops += [
                asyncio.create_task(tasks_loop(run, args.task_every)),
                asyncio.create_task(deploy_loop(run, args.deploy_every, repo, key_path)),
                asyncio.create_task(failures_loop(run, args.fail_every)),
                asyncio.create_task(sample_loop(run)),
            ]
            await asyncio.sleep(args.minutes * 60)
            minutes = run.minute()
            run.stop()
            await asyncio.gather(*loops)
            # One more tool call each, with everything up: a report staged unanswered during a
            # failure goes with it (under its own update id).
            await asyncio.gather(*(agent.tool_call() for agent in team))
            if args.templates:
                await asyncio.gather(*(agent.end() for agent in team))
        await asyncio.sleep(10)
        if args.templates:
            from tests.support.year import dump_templates

            kept = await dump_templates(run.stack.store, args.templates)
            print(f"templates: {kept} in {args.templates}")
        found = await counted(run, team)
    rows = [json.loads(line) for line in (args.out / "samples.jsonl").read_text().splitlines()]
    text = summary(run, rows, found, minutes)
    (args.out / "summary.txt").write_text(text + "\n")
    (args.out / "errors.txt").write_text("\n".join(run.errors) + "\n")
    print(text)
    print(f"plot: {plot(args.out, rows, run.failures)}")
    return 0


if __name__ == "__main__":
    run_and_exit(main())
