"""The founder's signed orders: only they lift a governor's hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from tether.contracts.base import Model
from tether.contracts.passkeys import PasskeyProof
from tether.names import GOVERNOR as GOVERNOR  # who holds what a governor held


class FounderOrder(Model):
    """A founder's order that lifts a governor's hold (a loop block, a cost pause), signed with
    the founder's Ed25519 key like a deployment approval: an agent cannot lift its own hold."""

    action: Literal["unblock", "resume", "cancel", "block", "release", "budget"]
    # The task (unblock, resume, cancel), the agent (release), or the budget and its new limit
    # (budget: `agent:<name>:day:<YYYY-MM-DD>:<usd>` or `team:month:<YYYY-MM>:<usd>`).
    subject: str = Field(max_length=200)
    reason: str = Field(default="", max_length=500)
    by: str = Field(default="founder", max_length=100)
    signed_at: datetime
    expires_at: datetime
    signature: str = Field(default="", max_length=200)
    # Instead of the founder's key: signed on the founder's device with an enrolled passkey,
    # over tether.trust.passkeys.challenge_of(payload()) (issue 30).
    passkey: PasskeyProof | None = None

    def payload(self) -> bytes:
        fields = [
            "tether-order/v1",
            self.action,
            self.subject,
            self.reason,
            self.by,
            self.signed_at.isoformat(),
            self.expires_at.isoformat(),
        ]
        return "\n".join(fields).encode()


class FounderActionInput(Model):
    by: str = "founder"
    reason: str = ""
    # The founder-signed order, needed to lift a governor's hold; founder-set blocks take the
    # action on trust. A payload that is not an order at all is refused before it reaches the
    # workflow (the SDK rejects an update whose input does not decode).
    order: FounderOrder | None = None


class JudgeOrderInput(Model):
    """Is `received` a founder-signed order for one of `actions` on `subject`, unexpired?"""

    received: FounderOrder | None = None
    actions: list[str]
    subject: str
    # What asked, for the log: "task X", "session of A".
    judged_for: str
    at: datetime


class OrderVerdict(Model):
    accepted: bool
    reason: str
    order: FounderOrder | None = None


class RefusalRecord(Model):
    """A message a workflow refused because of who sent it (no seal, another key, a replay, the
    wrong agent): written to the audit so `tether status` counts it and the founder can look."""

    workflow_id: str
    workflow_type: str
    handler: str
    kind: Literal["signal", "update"]
    reason: str = Field(max_length=500)
    # What the seal said about its sender, when there was one (never the signature).
    role: str | None = None
    signer: str | None = None
    agent: str | None = None
    at: datetime


class DeliverInput(Model):
    """A workflow-to-workflow signal, sent (and sealed with the workers' key) by an activity."""

    workflow_id: str
    signal: str
    # The message, as the receiving handler's contract dumps it (JSON mode).
    arg: dict[str, Any]
