"""What `tether prune` found, removed and kept (issue 31)."""

from __future__ import annotations

from datetime import datetime

from tether.contracts.base import Model


class PrunePart(Model):
    """One table's rows older than the cutoff: how many, and what keeps their record."""

    table: str
    rows: int
    # The rollup table they are summed into, or "audit_chain" when the chain holds them.
    kept_in: str
    # Rows the rollup gains (0 when the audit chain keeps them).
    rollup_rows: int = 0


class PruneReport(Model):
    cutoff: datetime
    applied: bool
    parts: list[PrunePart]
    # Every table a prune never touches, with its row count (an estimate for large tables).
    kept: dict[str, int]
