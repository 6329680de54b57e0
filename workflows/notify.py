"""Webhook delivery: one workflow per inbox row (`notify-<id>`), started by `activities.notify`.

It posts the row with the configured retry budget (`[notifications] webhook_attempts`, with
backoff up to `webhook_max_interval_seconds`), then records the outcome on the row: delivered,
or the last error. The inbox row itself was written before this started, so a webhook that
never answers loses nothing. Its search attribute `TetherState` is delivering/delivered/failed.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotifyActivities
    from tether import constants
    from tether.contracts import DeliveryInput, DeliveryOutcome
    from workflows import retry
    from workflows.failures import cause_text


@workflow.defn
class NotifyWorkflow:
    @workflow.run
    async def run(self, inp: DeliveryInput) -> DeliveryOutcome:
        self._show(inp, "delivering", "")
        policy: RetryPolicy = retry.bounded(
            inp.attempts,
            initial_seconds=min(1.0, inp.max_interval_seconds),
            maximum_seconds=inp.max_interval_seconds,
        )
        error: str | None = None
        try:
            await workflow.execute_activity_method(
                NotifyActivities.deliver_webhook,
                inp,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=policy,
            )
        except ActivityError as err:
            error = f"webhook failed: {cause_text(err)}"
        outcome = DeliveryOutcome(inbox_id=inp.inbox_id, delivered=error is None, error=error)
        self._show(inp, "delivered" if error is None else "failed", error or "")
        await workflow.execute_activity_method(
            NotifyActivities.record_delivery,
            outcome,
            start_to_close_timeout=retry.WRITE.timeout,
            retry_policy=retry.WRITE.policy,
        )
        return outcome

    def _show(self, inp: DeliveryInput, state: str, error: str) -> None:
        workflow.upsert_search_attributes([constants.SA_STATE.value_set(state)])
        detail = f"**{state}** · inbox item {inp.inbox_id} ({inp.kind}: {inp.subject})"
        workflow.set_current_details(detail + (f" · {error}" if error else ""))
