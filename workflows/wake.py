"""An agent's wake round, started by its Temporal Schedule (`tether-wake-<agent>`, from the
agent's `wake = "every 15m"`): one activity looks for work assigned to the agent or open for it,
and runs the agent when Tether is not running it already."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.wake import WakeActivities
    from tether.contracts import WakeInput, WakeOutcome
    from workflows import retry


@workflow.defn
class WakeWorkflow:
    @workflow.run
    async def run(self, inp: WakeInput) -> WakeOutcome:
        outcome: WakeOutcome = await workflow.execute_activity_method(
            WakeActivities.wake,
            inp,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=retry.bounded(3),
        )
        return outcome
