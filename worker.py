"""The Tether worker: every workflow and activity on one task queue.

Run as many as you like against the same Temporal address and task queue; nothing assumes one.
Configuration comes from the environment (see tether.config.Settings):

    TEMPORAL_ADDRESS=localhost:7233 DATABASE_URL=postgresql://... python worker.py
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from temporalio.client import Client
from temporalio.worker import Worker

from activities.deploy import DeployActivities
from activities.founder import FounderActivities
from activities.notify import NotifyActivities
from activities.sessions import SessionActivities
from activities.store import Store, connect_pool, migrate
from activities.tasks import TaskActivities
from tether.client import connect
from tether.config import Settings, TetherConfig, load_config
from tether.ops.runtime import (
    run_and_exit,
    setup_logging,
    setup_metrics,
    setup_tracing,
    stop_on_signals,
)
from tether.ops.stack import (
    database_url,
    ensure_credential_watch,
    ensure_search_attributes,
    temporal_address,
)
from workflows.guard import MessageGuard
from workflows.registry import WORKFLOWS

log = logging.getLogger("tether.worker")


def build_worker(client: Client, task_queue: str, store: Store, config: TetherConfig) -> Worker:
    tasks = TaskActivities(store, config)
    sessions = SessionActivities(store, config)
    deploys = DeployActivities(store, config)
    founder = FounderActivities(store, config)
    notifier = NotifyActivities(store, config)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        # No message can jam a workflow: malformed signals are dropped, updates refused.
        interceptors=[MessageGuard()],
        activities=[
            tasks.run_check,
            tasks.record_task,
            sessions.session_setup,
            sessions.probe_credentials,
            sessions.read_local_truth,
            sessions.read_forge,
            sessions.check_artifact,
            sessions.notify_founder,
            sessions.record_session,
            sessions.clear_credential_blockers,
            sessions.clear_inbox_items,
            sessions.remind_expiring_credentials,
            sessions.archive_handoff,
            sessions.cost_baseline,
            sessions.flush_governor,
            sessions.agent_holds_task,
            deploys.deploy_plan,
            deploys.judge_approval,
            deploys.audit,
            deploys.check_stale_base,
            deploys.claim_rollout,
            deploys.run_step,
            deploys.record_deployment,
            deploys.request_lock,
            founder.judge_order,
            notifier.deliver_webhook,
            notifier.record_delivery,
        ],
    )


async def serve(
    settings: Settings, stop: asyncio.Event, on_ready: Callable[[], None] | None = None
) -> None:
    config = load_config(settings.config_path)
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
        await ensure_credential_watch(
            client, settings.task_queue, config.notifications.expiry_check_hours
        )
        worker = build_worker(client, settings.task_queue, Store(pool), config)
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
