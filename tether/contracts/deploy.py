"""Deployments, approvals, the service lock and rollouts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, JsonValue

from tether.contracts.base import Model
from tether.contracts.passkeys import PasskeyAssertion, PasskeyEnrollment
from tether.contracts.tasks import Check, CheckEvidence
from tether.names import NAME_PATTERN


class DeployState(StrEnum):
    QUEUED = "queued"  # waiting for the service's lock and the founder's approval
    ROLLING_OUT = "rolling_out"
    CHECKING = "checking"  # health checks after the rollout
    DONE = "done"
    FAILED = "failed"  # the rollout or the health checks failed (rolled back if configured)
    REFUSED = "refused"  # stale base, cooldown, unknown service or ref, rejected by the founder
    EXPIRED = "expired"  # nobody approved it in time


DEPLOY_FINAL = frozenset(
    {DeployState.DONE, DeployState.FAILED, DeployState.REFUSED, DeployState.EXPIRED}
)

# Where a service runs, in the order a commit goes through them: production takes only a
# commit that was healthy in staging for the service's `soak_minutes`.
Environment = Literal["staging", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("staging", "production")


class DeployRequest(Model):
    service: str = Field(pattern=NAME_PATTERN)
    # A commit, a tag or a branch: resolved to the exact commit when the request is made.
    ref: str = Field(min_length=1, max_length=200, pattern=r"^[^\s~^:?*\[\\]+$")
    agent: str = Field(pattern=NAME_PATTERN)
    reason: str = Field(default="", max_length=500)
    environment: Environment = "staging"


class DeployPlan(Model):
    """The service as tether.toml describes it for the request's environment, read by the
    deployment's first activity."""

    service: str
    repository: str
    commit: str
    ref: str
    environment: Environment = "staging"
    # Production: how long the commit must have run healthy in staging first.
    soak_minutes: float = 0.0
    cooldown_minutes: float
    cooldown_mode: Literal["refuse", "wait"] = "refuse"
    approval_ttl_minutes: float
    request_ttl_hours: float
    rollout_timeout_seconds: float
    rollout_heartbeat_seconds: float = 20.0
    health_checks: list[Check] = Field(default_factory=list)
    has_restart: bool = False
    has_rollback: bool = False


class Approval(Model):
    """The founder's decision on one deployment, signed with the founder's Ed25519 key over
    `payload()`: the deployment, service, ref, commit, decision and expiry."""

    deployment_id: str = Field(max_length=200)
    service: str = Field(max_length=100)
    ref: str = Field(max_length=200)
    commit: str = Field(max_length=64)
    decision: Literal["approve", "reject"] = "approve"
    reason: str = Field(default="", max_length=500)
    expires_at: datetime
    signed_at: datetime
    by: str = Field(default="founder", max_length=100)
    # The founder-signed tag (`staging/<service>/<n>`) on the commit this approves: what a deploy
    # pipeline keys on, verified in the service's repository before the rollout.
    tag: str | None = Field(default=None, max_length=200)
    # base64 of the 64-byte Ed25519 signature; empty means unsigned (always refused).
    signature: str = Field(default="", max_length=200)

    def payload(self) -> bytes:
        fields = [
            "tether-approval/v2" if self.tag else "tether-approval/v1",
            self.deployment_id,
            self.service,
            self.ref,
            self.commit,
            self.decision,
            self.reason,
            self.expires_at.isoformat(),
            self.signed_at.isoformat(),
            self.by,
            *([self.tag] if self.tag else []),
        ]
        return "\n".join(fields).encode()


class ApprovalVerdict(Model):
    accepted: bool
    reason: str
    approval: Approval | None = None


class PasskeyApproval(Model):
    """A deployment's approval signed on the founder's device instead of with the founder's
    key: the assertion's challenge is tether.trust.passkeys.challenge_of(approval.payload())."""

    approval: Approval
    enrollment: PasskeyEnrollment
    assertion: PasskeyAssertion


class JudgeInput(Model):
    """An approval as received, to be judged against this deployment and the founder's key."""

    deployment_id: str
    service: str
    ref: str
    commit: str
    received: Approval
    received_at: datetime
    environment: Environment = "staging"
    # Signed on the founder's device instead of with the founder's key (issue 30): the proof,
    # checked again by the judge, with the passkey's revocation (the database's) besides.
    passkey: PasskeyApproval | None = None


class DeployLine(Model):
    """What `tether status` shows of a deployment while it runs, written into its PostgreSQL
    row with each audit row (the status reads PostgreSQL alone, without asking Temporal)."""

    state: DeployState
    environment: Environment = "staging"
    ref: str = ""
    commit: str | None = None
    agent: str = ""
    # Why it is where it is: what it waits for, or how it ended.
    reason: str = ""
    requested_at: datetime
    # In the lane's lock queue (approved, lock asked for), and holding the lock.
    queued: bool = False
    holds_lock: bool = False


class AuditInput(Model):
    deployment_id: str
    service: str
    kind: str
    actor: str = "tether"
    detail: dict[str, JsonValue] = Field(default_factory=dict)
    at: datetime | None = None
    # The deployment as of this row (absent in histories from before it was written).
    line: DeployLine | None = None


class RolloutClaim(Model):
    service: str
    environment: Environment = "staging"
    deployment_id: str
    at: datetime
    cooldown_minutes: float
    # How long this rollout may hold the service (rollout, restart, checks, rollback): past it,
    # a deployment lost without a word stops blocking the next one.
    busy_until: datetime


class RolloutSlot(Model):
    allowed: bool
    # When what refused it ends: the cooldown, or the other deployment's rollout.
    until: datetime | None = None
    # The deployment in the way, and whether it is rolling out right now.
    other: str | None = None
    rolling: bool = False


class StaleInput(Model):
    service: str
    environment: Environment = "staging"
    deployment_id: str | None = None
    repository: str
    commit: str
    # The founder's tag the deployment was approved with: it must still verify and point at
    # the commit when the rollout is about to start.
    tag: str | None = None


class StaleVerdict(Model):
    ok: bool
    deployed: str | None = None
    reason: str = ""


class RolloutInput(Model):
    deployment_id: str
    service: str
    environment: Environment = "staging"
    ref: str
    commit: str
    step: Literal["rollout", "restart", "rollback"] = "rollout"
    timeout_seconds: float = 600.0
    # The founder's tag the rollout is approved by: verified again just before it runs.
    tag: str | None = None


class RolloutResult(Model):
    ok: bool
    exit_code: int | None = None
    summary: str
    output_excerpt: str = ""
    duration_ms: int = 0


class RecordDeployInput(Model):
    deployment_id: str
    service: str
    environment: Environment = "staging"
    commit: str
    ref: str
    agent: str
    state: DeployState
    at: datetime


class LockRequest(Model):
    deployment_id: str
    service: str
    agent: str
    requested_at: datetime
    environment: Environment = "staging"


class LockRelease(Model):
    deployment_id: str
    reason: str = ""


class LockGrant(Model):
    service: str
    deployment_id: str
    lease_seconds: float


class LockView(Model):
    service: str
    holder: LockRequest | None = None
    lease_until: datetime | None = None
    waiting: list[LockRequest] = Field(default_factory=list)
    granted: int = 0
    skipped: list[str] = Field(default_factory=list)
    expired: list[str] = Field(default_factory=list)


class LockInput(Model):
    service: str
    carried: LockView | None = None


class DeployView(Model):
    deployment_id: str
    request: DeployRequest
    state: DeployState = DeployState.QUEUED
    commit: str | None = None
    plan: DeployPlan | None = None
    requested_at: datetime
    holds_lock: bool = False
    approval: Approval | None = None
    approval_refusals: list[str] = Field(default_factory=list)
    # What an approved deployment waits for before it queues (production: staging's soak).
    waiting_for: str = ""
    reason: str = ""
    rollout: RolloutResult | None = None
    health: list[CheckEvidence] = Field(default_factory=list)
    rolled_back: bool = False
    finished_at: datetime | None = None


class DeployInput(Model):
    deployment_id: str
    request: DeployRequest


class SoakInput(Model):
    """Was `commit` healthy in the service's staging for `minutes`, as of `now`?"""

    service: str
    commit: str
    minutes: float
    now: datetime


class SoakVerdict(Model):
    ok: bool
    reason: str
    # Not yet: it runs healthy in staging now and will have soaked long enough at this time.
    ready_at: datetime | None = None


class TagNotice(Model):
    """A tag that is not the founder's, for the founder's inbox, the audit and the session of
    the agent it concerns (the one whose deployment named it, or who the tagger says made it)."""

    service: str
    tag: str | None = None
    problem: str
    agent: str | None = None
    deployment_id: str | None = None


class TagWatchInput(Model):
    """A round of the tag watch (with the credential watch's schedule)."""

    now: datetime
