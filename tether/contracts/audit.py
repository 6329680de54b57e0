"""The audit chain's anchor: its head as a workflow's history records it."""

from __future__ import annotations

from datetime import datetime

from tether.contracts.base import Model


class AuditHead(Model):
    """Entry `seq` of the audit chain had `hash` when it was read; seq 0: the chain was empty."""

    seq: int = 0
    hash: str = ""
    at: datetime
