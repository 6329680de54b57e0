"""An agent's wake round, as its Temporal Schedule asks (workflows/wake.py): run the agent now
when a task is assigned to it or open for it and Tether is not running it already. Apart from
the runner: it starts the run through the Python client, which knows the session workflow, and
the session workflow calls the runner (one module for both was an import circle)."""

from __future__ import annotations

from temporalio import activity

from activities.escalation import InvalidInput, escalating
from tether.client import run_agent
from tether.client.calls import Refused
from tether.config import TetherConfig
from tether.contracts import RunRequest, TaskState, WakeInput, WakeOutcome
from tether.store import Store

# A task in these states, assigned to the agent, is work the wake schedule runs it for.
WORKING = (TaskState.CLAIMED,)


class WakeActivities:
    def __init__(self, store: Store, config: TetherConfig) -> None:
        self.store = store
        self.config = config

    @activity.defn
    @escalating
    async def wake(self, inp: WakeInput) -> WakeOutcome:
        """A round of the agent's wake schedule: if a task is assigned to it (or open for it to
        claim) and Tether is not running it already, run it now, sealed with the workers' key."""
        tasks = await self.store.task_summaries()
        mine = [t for t in tasks if t.assignee == inp.agent and t.state in WORKING]
        # Open for it: unassigned, or assigned to it and not claimed yet (only it may claim).
        free = [t for t in tasks if t.assignee in (None, inp.agent) and t.state == TaskState.OPEN]
        if mine:
            task = mine[0]
            request = RunRequest(
                prompt=f"Work on your task {task.id}: {task.title}",
                task_id=task.id,
                by="tether (wake)",
            )
        elif free:
            task = free[0]
            request = RunRequest(
                prompt=f"Task {task.id} is open: {task.title}. Claim it with `tether task claim "
                f"{task.id} --agent {inp.agent}`, then do it.",
                by="tether (wake)",
            )
        else:
            return WakeOutcome(started=False, reason="no task assigned to it or open")
        try:
            # The runtime as tether.toml says it now (the schedule's input may be older).
            agent = self.config.agent(inp.agent)
            if agent is None:
                raise InvalidInput(
                    f"agent {inp.agent!r} is not in tether.toml: Tether cannot wake it"
                )
            runtime = agent.runtime
            await run_agent(
                activity.client(), activity.info().task_queue, inp.agent, runtime, request
            )
        except Refused as exc:
            return WakeOutcome(started=False, reason=str(exc), task_id=task.id)
        return WakeOutcome(started=True, reason="woken", task_id=task.id)
