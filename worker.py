"""The Tether worker: every workflow and activity on one task queue.

Run as many as you like against the same Temporal address and task queue; nothing assumes one.
Configuration comes from the environment (see tether.config.Settings):

    TEMPORAL_ADDRESS=localhost:7233 DATABASE_URL=postgresql://... python worker.py
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.audit import AuditActivities
from activities.deploy import DeployActivities
from activities.founder import FounderActivities
from activities.messages import MessageActivities
from activities.notify import NotifyActivities
from activities.runner import RunnerActivities
from activities.sessions import SessionActivities
from activities.tasks import TaskActivities
from activities.wake import WakeActivities
from tether import constants
from tether.client import connect
from tether.client.connection import sealed
from tether.config import Settings, TetherConfig, load_config
from tether.ops.runtime import (
    run_and_exit,
    setup_logging,
    setup_metrics,
    setup_tracing,
    stop_on_signals,
)
from tether.ops.stack import (
    ensure_audit_anchor,
    ensure_credential_watch,
    ensure_retention,
    ensure_search_attributes,
    ensure_wake_schedules,
)
from tether.ops.stackfile import database_url, temporal_address
from tether.store import Store, connect_pool, migrate
from tether.trust.keys import with_founder_key, worker_keys
from tether.trust.seals import Signer, Trust, parse_public, public_text
from workflows.guard import MessageGuard
from workflows.registry import WORKFLOWS, workflow_runner

log = logging.getLogger("tether.worker")
HEARTBEAT_THROTTLE = timedelta(seconds=0.5)


def build_worker(
    client: Client,
    task_queue: str,
    store: Store,
    config: TetherConfig,
    keys: tuple[Trust, Signer] | None = None,
    settings: Settings | None = None,
) -> Workers:
    """Every workflow and activity on `task_queue`. `keys`: the public keys the workflows accept
    seals from and the workers' signer (tether.trust.keys.worker_keys); without them, a key made for
    this worker alone and the founder's key from `config` (one worker, as in tests)."""
    trust, signer = keys or (Trust(), Signer("worker", Ed25519PrivateKey.generate()))
    trust = _with_config_keys(trust, signer, config)
    tasks = TaskActivities(store, config)
    sessions = SessionActivities(store, config)
    deploys = DeployActivities(store, config)
    founder = FounderActivities(store, config)
    messages = MessageActivities(store)
    settings = settings or Settings.from_env()
    notifier = NotifyActivities(store, config, settings.gateway_address)
    # Where agents Tether runs keep their worktrees, and the gateway they report to.
    runner = RunnerActivities(store, config, settings)
    waker = WakeActivities(store, config)
    auditor = AuditActivities(store)
    main = Worker(
        # Activities that message workflows seal with the workers' key.
        sealed(client, signer),
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(settings.workflow_sandbox),
        # Bounded memory however much work is open: the least recently used workflows are
        # evicted, and replayed from their history when a message comes for them.
        max_cached_workflows=settings.workflow_cache,
        # A cancellation reaches a running activity only with the answer to a heartbeat the
        # worker sends: at most this long apart (the SDK's default is 80% of the heartbeat
        # timeout), so a hold ends an agent's process in about a second, not five.
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        # No message can jam a workflow: malformed signals are dropped, updates refused; and
        # none changes state without the seal of a sender allowed to send it.
        interceptors=[MessageGuard(trust)],
        # Every activity of these classes, as they define them; the agents' processes run on
        # the queue below.
        activities=activity_methods(
            tasks,
            sessions,
            deploys,
            founder,
            notifier,
            messages,
            waker,
            auditor,
            runner,
            leave={"run_agent"},
        ),
    )
    # The agents' processes have a queue of their own, polled with at most `max_agents` at once
    # per worker process: the rest wait in Temporal (`tether status` shows them queued).
    agents = Worker(
        sealed(client, signer),
        task_queue=f"{task_queue}{constants.AGENTS_QUEUE_SUFFIX}",
        activities=[runner.run_agent],
        max_concurrent_activities=runner.settings.max_agents,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )
    return Workers(main, agents, runner.close)


def activity_methods(*instances: object, leave: Collection[str] = ()) -> list[Callable[..., Any]]:
    """Every method of `instances` that is a Temporal activity (`@activity.defn`), but those
    named in `leave`: what a worker runs is what the activity classes define, never a list kept
    by hand beside them."""
    found: list[Callable[..., Any]] = []
    for instance in instances:
        # The class's functions, bound to the instance: reading every attribute of the
        # instance itself would run its properties.
        for name, function in inspect.getmembers(type(instance), inspect.isfunction):
            if name not in leave and activity._Definition.from_callable(function) is not None:
                found.append(getattr(instance, name))
    return found


class Workers:
    """A worker process's pollers, started and stopped together: every workflow and activity on
    the task queue, and the agents' processes on its `-agents` queue."""

    def __init__(
        self, main: Worker, agents: Worker, closing: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.main, self.agents = main, agents
        self._closing = closing
        self.task_queue = main.task_queue

    async def __aenter__(self) -> Workers:
        await self.main.__aenter__()
        try:
            await self.agents.__aenter__()
        except BaseException:
            await self.main.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.agents.__aexit__(*exc)
        finally:
            try:
                await self.main.__aexit__(*exc)
            finally:
                if self._closing is not None:
                    await self._closing()


def _with_config_keys(trust: Trust, signer: Signer, config: TetherConfig) -> Trust:
    """`trust`, plus the workers' own public key and the founder's and gateway's from config."""
    keys = {role: list(found) for role, found in trust.keys.items()}
    extra = [("worker", signer.public_key)]
    for role, ref in (("founder", config.founder), ("gateway", config.gateway)):
        text = ref.key_text()
        if text:
            extra.append((role, parse_public(text, f"[{role}] public key")))
    for role, key in extra:
        held = keys.setdefault(role, [])
        if all(public_text(key) != public_text(k) for k in held):
            held.append(key)
    return Trust({role: tuple(found) for role, found in keys.items()})


async def serve(
    settings: Settings, stop: asyncio.Event, on_ready: Callable[[], None] | None = None
) -> None:
    config = load_config(settings.config_path)
    keys = worker_keys(settings, config)
    # The founder's approvals and orders are judged against $TETHER_HOME/founder.pub unless
    # tether.toml names the key.
    config = with_founder_key(settings, config)
    address = temporal_address(settings)
    pool = await connect_pool(database_url(settings))
    try:
        applied = await migrate(pool)
        if applied:
            log.info("applied database migrations %s", applied)
        client = await connect(address, settings.namespace)
        added = await ensure_search_attributes(client)
        if added:
            log.info("registered search attributes %s", added)
        before, changed = await ensure_retention(client, config.retention.temporal_days)
        if changed:
            log.info(
                "Temporal keeps closed workflows %d days (was %s): [retention] temporal_days",
                config.retention.temporal_days,
                before,
            )
        await ensure_credential_watch(
            client, settings.task_queue, config.notifications.expiry_check_hours
        )
        await ensure_wake_schedules(client, settings.task_queue, config.agents)
        await ensure_audit_anchor(client, settings.task_queue)
        worker = build_worker(client, settings.task_queue, Store(pool), config, keys, settings)
        async with worker:
            log.info("worker polling %s on %s", settings.task_queue, address)
            if on_ready:
                on_ready()
            await stop.wait()
        log.info("worker stopped")
    finally:
        await pool.close()


async def _main() -> int:
    setup_logging()
    settings = Settings.from_env()
    setup_tracing(settings.otel_exporter, role="worker")
    setup_metrics(settings.metrics_bind)
    await serve(settings, stop_on_signals())
    return 0


if __name__ == "__main__":
    run_and_exit(_main())
