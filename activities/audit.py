"""The audit chain's anchor: the head as PostgreSQL has it now, for the workflow to record in its
history (workflows/audit.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.escalation import escalating
from tether.contracts import AuditHead
from tether.store import Store


class AuditActivities:
    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn
    @escalating
    async def audit_head(self) -> AuditHead:
        head = await self.store.audit_head()
        seq, digest = head or (0, "")
        return AuditHead(seq=seq, hash=digest, at=datetime.now(UTC))
