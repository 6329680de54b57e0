"""Activities of the task lifecycle: run a verification check, write the read model."""

from __future__ import annotations

from temporalio import activity

from activities.checks import run_check as _run_check
from activities.escalation import escalating
from tether.config import TetherConfig
from tether.contracts import CheckEvidence, RecordTaskInput, RunCheckInput
from tether.store import Store


class TaskActivities:
    def __init__(self, store: Store, config: TetherConfig) -> None:
        self.store = store
        self.config = config

    @activity.defn
    @escalating
    async def run_check(self, inp: RunCheckInput) -> CheckEvidence:
        return await _run_check(inp, self.config, heartbeat=activity.heartbeat)

    @activity.defn
    @escalating
    async def record_task(self, inp: RecordTaskInput) -> None:
        await self.store.record(inp.task, inp.events)
