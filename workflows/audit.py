"""The audit chain's anchor, run every minute by its Temporal Schedule (`tether-audit-anchor`):
one activity reads the chain's head (its last entry's number and hash) and the workflow returns
it, so the head is in a Temporal history: append-only, and outside PostgreSQL. `tether audit
verify` checks the chain against these anchors: a chain rewritten from some entry on, or cut
short, disagrees with them."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities
    from tether.contracts import AuditHead
    from workflows import retry


@workflow.defn
class AuditAnchorWorkflow:
    @workflow.run
    async def run(self) -> AuditHead:
        head: AuditHead = await workflow.execute_activity_method(
            AuditActivities.audit_head,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=retry.bounded(5),
        )
        return head
