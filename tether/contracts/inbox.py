"""The founder's inbox and its webhook deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue

from tether.contracts.base import Model
from tether.names import inbox_command, inbox_see


class ClearInboxInput(Model):
    subject: str
    kinds: list[str]


class InboxItem(Model):
    """Something waiting for the founder; `key` makes posting it twice harmless."""

    key: str = Field(max_length=300)
    kind: Literal[
        "credential_blocked",
        "credential_expiring",
        "pseudo_work",
        "overlap",
        "session_error",
        "loop_blocked",
        "cost_warning",
        "cost_paused",
        "budget_exceeded",
        "run_failed",
        "agent_escalation",
        "deploy_approval",
        "deploy_refused",
        "deploy_failed",
        "tag_refused",
        "egress_refused",
        # Someone sent a founder's action (an approval, an order) that was refused: a forgery,
        # a replay, or a message that is not one.
        "founder_action_refused",
    ]
    subject: str
    title: str
    detail: dict[str, JsonValue] = Field(default_factory=dict)
    # The one command that acts on it (and clears it). Empty for a notice: the founder
    # acknowledges it with `tether inbox done ID` (see `command`).
    action: str = ""
    created_at: datetime | None = None
    id: int | None = None
    cleared_at: datetime | None = None

    @property
    def command(self) -> str:
        """The one command that acts on the item: its own, or acknowledging it."""
        return inbox_command(self.action, self.id)

    @property
    def see(self) -> str:
        """Where to read more, for a notice (`detail["see"]`)."""
        return inbox_see(self.detail)


class DeliveryInput(Model):
    """What the webhook delivery workflow is given: the inbox row's id, never the URL (a secret)
    and never the text (read fresh from PostgreSQL by the activity)."""

    inbox_id: int
    kind: str = ""
    subject: str = ""
    attempts: int = Field(default=8, ge=1)
    max_interval_seconds: float = Field(default=300.0, gt=0)


class DeliveryOutcome(Model):
    inbox_id: int
    delivered: bool
    error: str | None = None


class ExpiryReminderInput(Model):
    now: datetime
