"""The one vocabulary shared by workflows, activities, the client and the CLI.

Every workflow, activity, update and query takes one model and returns one model. Fields carry
defaults so that new fields can be added without breaking workflows already running.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
MAX_CHECK_ATTEMPTS = 120
MAX_CHECKS = 20


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    VERIFYING = "verifying"
    DONE = "done"
    BLOCKED = "blocked"
    PAUSED = "paused"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({TaskState.DONE, TaskState.CANCELLED})
HOLD_STATES = frozenset({TaskState.BLOCKED, TaskState.PAUSED})


# --- checks ---------------------------------------------------------------------------------


class CheckBase(Model):
    # Checks are fixed when the task is created.
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # How long to keep re-running a failing check before it counts as failed, e.g. while a
    # deploy rolls out. Zero means one attempt.
    retry_for_seconds: float = Field(default=0.0, ge=0, le=24 * 3600)
    retry_interval_seconds: float = Field(default=10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _bounded_attempts(self) -> CheckBase:
        # Each attempt adds events to the task's history; keep a check well inside its limits.
        attempts = self.retry_for_seconds / self.retry_interval_seconds
        if attempts > MAX_CHECK_ATTEMPTS:
            raise ValueError(
                f"retry_for_seconds / retry_interval_seconds allows {attempts:.0f} attempts, more "
                f"than {MAX_CHECK_ATTEMPTS}; retry less often (raise retry_interval_seconds)"
            )
        return self

    def label(self, index: int) -> str:
        return self.name or f"{getattr(self, 'kind', 'check')}#{index + 1}"


class HttpCheck(CheckBase):
    kind: Literal["http"] = "http"
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    url: str
    expect_status: int = Field(default=200, ge=100, le=599)
    body_contains: str | None = None
    # Dotted path into a JSON response ("data.items.0.id"); with json_value, the value it must have.
    json_field: str | None = None
    json_value: JsonValue = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ShellCheck(CheckBase):
    kind: Literal["shell"] = "shell"
    command: str = Field(min_length=1)
    cwd: str | None = None
    expect_exit: int = 0
    # A regular expression that must be found in the command's stdout.
    stdout_pattern: str | None = None

    @field_validator("stdout_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from exc
        return value


class PytestCheck(CheckBase):
    """A test command; passes when it exits 0 and at least `min_passed` tests passed."""

    kind: Literal["pytest"] = "pytest"
    command: str = "python -m pytest -q"
    cwd: str | None = None
    min_passed: int = Field(default=1, ge=0)
    timeout_seconds: float = Field(default=600.0, gt=0, le=3600)


class GitCheck(CheckBase):
    """A commit on a branch touching a path, or a tag pointing at a commit, in a configured repo."""

    kind: Literal["git"] = "git"
    repository: str = Field(min_length=1)
    branch: str | None = None
    path: str | None = None
    # Only commits made after the task was created count, so old work cannot satisfy a new task.
    since_task_created: bool = True
    tag: str | None = None
    commit: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_mode(self) -> GitCheck:
        if bool(self.branch) == bool(self.tag):
            raise ValueError(
                "a git check needs exactly one of 'branch' (a commit on a branch, optionally "
                "touching 'path') or 'tag' (a tag, optionally pointing at 'commit')"
            )
        if self.tag and self.path:
            raise ValueError("'path' goes with 'branch', not with 'tag'")
        if self.branch and self.commit:
            raise ValueError("'commit' goes with 'tag', not with 'branch'")
        return self


Check = Annotated[HttpCheck | ShellCheck | PytestCheck | GitCheck, Field(discriminator="kind")]


class Artifact(Model):
    """What will exist when the work is done. Checked by the artifact test of agent sessions."""

    kind: Literal["commit", "file", "url", "deploy"]
    repository: str | None = None
    branch: str | None = None
    path: str | None = None
    url: str | None = None
    service: str | None = None

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Artifact:
        needed = {
            "commit": ("repository",),
            "file": ("path",),
            "url": ("url",),
            "deploy": ("service",),
        }
        missing = [f for f in needed[self.kind] if not getattr(self, f)]
        if missing:
            raise ValueError(f"a '{self.kind}' artifact needs {', '.join(missing)}")
        return self


class TaskSpec(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=NAME_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    assignee: str | None = Field(default=None, pattern=NAME_PATTERN)
    artifact: Artifact | None = None
    checks: list[Check] = Field(min_length=1, max_length=MAX_CHECKS)
    created_by: str = "founder"
    # What sort of work it is ("bugfix", "feature", "deploy"); costs are compared within a kind.
    kind: str | None = Field(default=None, pattern=NAME_PATTERN)

    @field_validator("checks", mode="before")
    @classmethod
    def _need_checks(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError(
                "a task needs at least one check: without one nothing could verify that it is done"
            )
        return value


# --- evidence and task records --------------------------------------------------------------


class CheckEvidence(Model):
    index: int
    name: str
    kind: str
    passed: bool
    summary: str
    started_at: datetime
    duration_ms: int = 0
    attempts: int = 1
    exit_code: int | None = None
    status_code: int | None = None
    tests_passed: int | None = None
    tests_failed: int | None = None
    commit: str | None = None
    output_excerpt: str = ""
    output_bytes: int = 0
    error: str | None = None


class TaskEvent(Model):
    seq: int
    at: datetime
    actor: str
    kind: str
    from_state: TaskState | None = None
    to_state: TaskState
    detail: dict[str, JsonValue] = Field(default_factory=dict)


class TaskView(Model):
    """The task as the workflow holds it, and as the read model stores it."""

    spec: TaskSpec
    state: TaskState = TaskState.OPEN
    assignee: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    hold_reason: str | None = None
    # The state a blocked or paused task returns to.
    held_from: TaskState | None = None
    # Who put it on hold: GOVERNOR for a loop or cost hold (only a founder-signed order lifts
    # it), else the founder who blocked it.
    held_by: str | None = None
    last_note: str | None = None
    last_evidence: list[CheckEvidence] = Field(default_factory=list)
    submissions: int = 0
    seq: int = 0


# --- workflow and activity messages ---------------------------------------------------------


class TaskInput(Model):
    spec: TaskSpec
    # Set when the workflow continues as new, carrying its state.
    carried: TaskView | None = None


class TaskResult(Model):
    task: TaskView


class ClaimInput(Model):
    agent: str = Field(pattern=NAME_PATTERN)


class SubmitInput(Model):
    agent: str = Field(pattern=NAME_PATTERN)
    note: str | None = Field(default=None, max_length=4000)


class SubmitResult(Model):
    task_id: str
    done: bool
    state: TaskState
    evidence: list[CheckEvidence]


GOVERNOR = "tether"


class FounderOrder(Model):
    """A founder's order that lifts a governor's hold (a loop block, a cost pause), signed with
    the founder's Ed25519 key like a deployment approval: an agent cannot lift its own hold."""

    action: Literal["unblock", "resume", "cancel", "release"]
    # The task (unblock, resume, cancel) or the agent (release) it is about.
    subject: str = Field(max_length=200)
    reason: str = Field(default="", max_length=500)
    by: str = Field(default="founder", max_length=100)
    signed_at: datetime
    expires_at: datetime
    signature: str = Field(default="", max_length=200)

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


class RunCheckInput(Model):
    task_id: str
    index: int
    check: Check
    task_created_at: datetime | None = None


class RecordTaskInput(Model):
    task: TaskView
    # Every event not yet written, oldest first; writing is idempotent per (task, seq).
    events: list[TaskEvent]


class TaskRecord(Model):
    """A task as the read model holds it: the view and its append-only history."""

    task: TaskView
    events: list[TaskEvent] = Field(default_factory=list)


# --- agent sessions ---------------------------------------------------------------------------


class SessionState(StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    BLOCKED = "blocked"
    ENDED = "ended"


class CredentialStatus(Model):
    """What a probe found. Never carries the secret, only its name and the verdict."""

    name: str
    kind: str
    ok: bool
    # False when the probe could not reach a verdict (network error, server error).
    verified: bool = True
    reason: str = ""
    expires_at: datetime | None = None
    checked_at: datetime | None = None


class CommitInfo(Model):
    repository: str
    sha: str
    branch: str
    author: str
    at: datetime
    subject: str


class PullRequestInfo(Model):
    repository: str
    number: int
    title: str
    branch: str
    author: str
    updated_at: datetime | None = None
    url: str = ""
    files: list[str] = Field(default_factory=list)
    # The agent of the team that opened it, when the author is one of them.
    agent: str | None = None


class TaskSummary(Model):
    id: str
    title: str
    state: TaskState
    assignee: str | None = None
    held_by: str | None = None
    hold_reason: str | None = None
    artifact: Artifact | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class GroundTruth(Model):
    """The state of the world at session start: read from git, the forge and the task table."""

    commits: list[CommitInfo] = Field(default_factory=list)
    pull_requests: list[PullRequestInfo] = Field(default_factory=list)
    tasks: list[TaskSummary] = Field(default_factory=list)
    # Branch tips at the start, per repository: what the artifact test compares against.
    branch_tips: dict[str, dict[str, str]] = Field(default_factory=dict)
    # The branch checked out in each repository at the start.
    checked_out: dict[str, str] = Field(default_factory=dict)
    # A handoff brief left by an earlier session of this agent (the knowledge base).
    handoff: str | None = None
    # The structured state archived with it (task, files, tests, branch tips at the chain start).
    handoff_state: dict[str, JsonValue] = Field(default_factory=dict)
    # What could not be read (a forge that did not answer, a missing clone), said in the brief.
    problems: list[str] = Field(default_factory=list)


class Overlap(Model):
    kind: Literal["pr_files", "pr_task"]
    summary: str
    agents: list[str] = Field(default_factory=list)
    pull_requests: list[int] = Field(default_factory=list)
    task_id: str | None = None
    files: list[str] = Field(default_factory=list)


class Brief(Model):
    """What an agent is told before it does anything."""

    agent: str
    own_tasks: list[TaskSummary] = Field(default_factory=list)
    offered: TaskSummary | None = None
    # Open tasks not offered because someone else already works on them.
    withheld: dict[str, str] = Field(default_factory=dict)
    others_in_flight: list[TaskSummary] = Field(default_factory=list)
    others_pull_requests: list[PullRequestInfo] = Field(default_factory=list)
    others_commits: list[CommitInfo] = Field(default_factory=list)
    overlaps: list[Overlap] = Field(default_factory=list)
    handoff: str | None = None
    warnings: list[str] = Field(default_factory=list)
    text: str = ""


class Blocker(Model):
    """Why a session may not proceed; `message()` is what the agent is told."""

    kind: Literal["credential", "config"] = "credential"
    # The credential's name, or the agent's for a configuration problem.
    subject: str
    reason: str
    since: datetime

    def describe(self) -> str:
        what = f"credential {self.subject}" if self.kind == "credential" else "configuration:"
        return f"{what} {self.reason}"

    def message(self) -> str:
        return f"blocked: {self.describe()}, founder notified — do not work around it"


class ArtifactResult(Model):
    passed: bool
    summary: str
    artifact: Artifact | None = None
    commits: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    checked_at: datetime | None = None


class SessionInput(Model):
    agent: str = Field(pattern=NAME_PATTERN)
    # The runtime's own id for the session (Claude Code's session_id), if it has one.
    external_id: str | None = Field(default=None, max_length=200)
    runtime: str = "claude-code"
    # How the runtime started it (Claude Code: startup, resume, clear, compact).
    source: str = "startup"
    # What will exist when the session is done; default: the claimed task's, else a commit.
    artifact: Artifact | None = None
    task_id: str | None = Field(default=None, pattern=NAME_PATTERN)
    # Set when the workflow continues as new, carrying its state.
    carried: SessionView | None = None


class SessionView(Model):
    agent: str
    external_id: str | None = None
    runtime: str = "claude-code"
    state: SessionState = SessionState.STARTING
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    ended_by: str | None = None
    task_id: str | None = None
    artifact: Artifact | None = None
    credentials: list[CredentialStatus] = Field(default_factory=list)
    blocker: Blocker | None = None
    brief: Brief | None = None
    branch_tips: dict[str, dict[str, str]] = Field(default_factory=dict)
    checked_out: dict[str, str] = Field(default_factory=dict)
    artifact_result: ArtifactResult | None = None
    pseudo_work: bool = False
    # What the agent is told while the session is blocked (the blocker's message).
    notice: str = ""
    # When the session is ended by Tether if nothing ends it before.
    deadline: datetime | None = None
    # The memory, anti-loop and cost governors (issue 4): carried across continue-as-new.
    governor: Governor = Field(default_factory=lambda: Governor())
    # The session this one continues after a handoff, and the brief it started from.
    handoff_from: str | None = None
    # The sequence of the session's read-model writes: a late write of an older snapshot never
    # overwrites a newer one in PostgreSQL.
    seq: int = 0


class AttachInput(Model):
    """A runtime session asks for the agent's Tether session (update-with-start `attach`).

    The workflow decides: the same runtime session (or one with no id) resumes it; another
    runtime session supersedes it (it is ended, its artifact test runs, and the caller starts
    the next one); an ended or ending session is refused with `SessionEnded`."""

    external_id: str | None = Field(default=None, max_length=200)
    runtime: str = "claude-code"
    source: str = "startup"


class EndSessionInput(Model):
    reason: str = Field(default="ended", max_length=500)
    by: str = "agent"
    # When given, only the session with this runtime id is ended (a late SessionEnd of an
    # earlier Claude Code session must not end the current one).
    external_id: str | None = None


class SessionSetup(Model):
    """The agent as tether.toml describes it, read by the session's first activity."""

    known: bool
    problem: str = ""
    credentials: list[str] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=list)
    # Its login on the forge.
    login: str | None = None
    max_hours: float = 12.0
    limits: GovernorLimits = Field(default_factory=lambda: GovernorLimits())


class RecheckInput(Model):
    by: str = "founder"


class ProbeInput(Model):
    agent: str
    credentials: list[str]


class SyncInput(Model):
    agent: str
    # Identifies this session to the knowledge base, so a retried read returns the same handoff.
    session_key: str


class ArtifactInput(Model):
    agent: str
    artifact: Artifact | None
    task_id: str | None
    started_at: datetime
    branch_tips: dict[str, dict[str, str]]
    checked_out: dict[str, str]


# --- governors: memory, anti-loop, cost ---------------------------------------------------------


class TokenUsage(Model):
    input: int = Field(default=0, ge=0)
    output: int = Field(default=0, ge=0)
    cache_read: int = Field(default=0, ge=0)
    cache_write: int = Field(default=0, ge=0)

    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    def add(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input=self.input + other.input,
            output=self.output + other.output,
            cache_read=self.cache_read + other.cache_read,
            cache_write=self.cache_write + other.cache_write,
        )


class Price(Model):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float = Field(default=0.0, ge=0)
    cache_write: float = Field(default=0.0, ge=0)

    def cost(self, usage: TokenUsage) -> float:
        return (
            usage.input * self.input
            + usage.output * self.output
            + usage.cache_read * self.cache_read
            + usage.cache_write * self.cache_write
        ) / 1_000_000


class ToolCall(Model):
    """One finished tool call, reduced by `tether.fingerprint` (the raw output stays with the
    agent: only the action, the error signature and digests reach the workflow)."""

    tool: str = Field(min_length=1, max_length=100)
    ok: bool
    action: str = Field(default="", max_length=200)
    signature: str = Field(default="", max_length=400)
    error: str = Field(default="", max_length=400)
    exit_code: int | None = None
    input_digest: str = Field(default="", max_length=64)
    output_digest: str = Field(default="", max_length=64)
    file_path: str | None = Field(default=None, max_length=500)
    test: str | None = Field(default=None, max_length=400)
    test_summary: str = Field(default="", max_length=400)
    tool_use_id: str | None = Field(default=None, max_length=100)

    def fingerprint(self) -> str:
        return f"{self.tool}|{self.action}|{self.signature}" if not self.ok else ""


class Report(Model):
    """What the agent runtime reports while it works: a tool call, context usage, spend."""

    # The runtime's session id: a report from another runtime session is refused.
    external_id: str | None = Field(default=None, max_length=200)
    tool_call: ToolCall | None = None
    # Tokens in the context window now, and the window (default: the agent's configured one).
    context_tokens: int | None = Field(default=None, ge=0)
    context_window: int | None = Field(default=None, gt=0)
    # The runtime compacted the context since the last report.
    compacted: bool = False
    compact_summary: str | None = Field(default=None, max_length=8000)
    # New spend since the last report: tokens per model, and USD when the runtime prices it.
    usage: dict[str, TokenUsage] = Field(default_factory=dict)
    cost_usd: float | None = Field(default=None, ge=0)


class Directive(Model):
    kind: Literal["compact", "trim", "handoff", "cost_warning", "cost_pause", "loop_stop"]
    text: str


class ReportAnswer(Model):
    directives: list[Directive] = Field(default_factory=list)
    # Set when the agent must stop working (loop, cost pause, handoff, blocked session).
    deny: str | None = None
    context_pct: float | None = None
    reports: int = 0


class Gate(Model):
    """The small answer PreToolUse asks for on every tool call."""

    state: SessionState
    external_id: str | None = None
    deny: str | None = None


class GovernorLimits(Model):
    """The governors' thresholds for one agent, read from tether.toml at session start."""

    context_window: int = 200_000
    compact: float = 0.70
    trim: float = 0.85
    handoff: float = 0.95
    # A stage fires again only once usage went this far below it (or after a compaction).
    rearm_margin: float = 0.05
    loop_limit: int = 5
    cost_warn_ratio: float = 3.0
    cost_pause_ratio: float = 5.0
    cost_window: int = 20
    cost_min_history: int = 5
    cost_ceiling_usd: float = 25.0
    prices: dict[str, Price] = Field(default_factory=dict)

    def price(self, model: str) -> Price | None:
        """The longest configured prefix of the model name, else `default`."""
        matches = [k for k in self.prices if k != "default" and model.startswith(k)]
        if matches:
            return self.prices[max(matches, key=len)]
        return self.prices.get("default")


class LoopEntry(Model):
    """One failing action in the loop window."""

    tool: str
    action: str
    signature: str
    error: str = ""
    count: int = 0
    last_input: str = ""
    last_output: str = ""
    first_at: datetime | None = None
    last_at: datetime | None = None
    # The report number of its last failure, for evicting the oldest.
    last_report: int = 0


class Hold(Model):
    """The governor stopped the agent's work: a loop or a cost pause. Cleared by the founder."""

    kind: Literal["loop", "cost"]
    reason: str
    since: datetime
    task_id: str | None = None
    evidence: dict[str, JsonValue] = Field(default_factory=dict)


class CostBaseline(Model):
    """What a task's cost is compared with."""

    # Spend on the task by other sessions (the ledger), before this one.
    task_before_usd: float = 0.0
    # The rolling average over completed tasks; None when there are too few (the ceiling applies).
    average_usd: float | None = None
    tasks: int = 0
    # "kind:<k>", "all", or "ceiling".
    basis: str = "ceiling"


class TestRun(Model):
    command: str
    ok: bool
    summary: str = ""
    at: datetime


class DirectiveRecord(Model):
    kind: str
    report: int
    at: datetime
    context_pct: float | None = None
    cost_usd: float | None = None


class Governor(Model):
    limits: GovernorLimits = Field(default_factory=GovernorLimits)
    reports: int = 0
    tool_calls: int = 0
    failures: int = 0
    context_tokens: int | None = None
    context_pct: float | None = None
    # Stages that fired and have not re-armed yet.
    fired: list[str] = Field(default_factory=list)
    compactions: int = 0
    directive_counts: dict[str, int] = Field(default_factory=dict)
    # The most recent directives issued (bounded).
    directives: list[DirectiveRecord] = Field(default_factory=list)
    # Failing actions by fingerprint (bounded: the least recently failing are dropped).
    loop: dict[str, LoopEntry] = Field(default_factory=dict)
    hold: Hold | None = None
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    # This session's spend per task ("" for no task), the ledger's unit.
    task_costs: dict[str, float] = Field(default_factory=dict)
    task_tokens: dict[str, TokenUsage] = Field(default_factory=dict)
    baseline: CostBaseline | None = None
    # The task cost at which the next warning / pause fires (raised when the founder resumes).
    cost_stage: Literal["", "warned", "paused"] = ""
    pause_at_usd: float | None = None
    # What the handoff archives beyond the task: bounded recent lists.
    files: list[str] = Field(default_factory=list)
    tests: list[TestRun] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    compact_summary: str = ""
    # Tool calls not yet written to PostgreSQL, and how many reports the ledger holds.
    unflushed: list[ToolCallRecord] = Field(default_factory=list)
    flushed_reports: int = 0


class ToolCallRecord(Model):
    seq: int
    at: datetime
    task_id: str | None = None
    call: ToolCall


class NoteInput(Model):
    kind: Literal["decision", "question", "note"] = "note"
    text: str = Field(min_length=1, max_length=1000)


class ClearInboxInput(Model):
    subject: str
    kinds: list[str]


class ReleaseInput(Model):
    """The founder released the agent's hold (resumed or unblocked its task, or the session)."""

    by: str = "founder"
    reason: str = ""
    task_id: str | None = None
    # Set when the task itself is gone (cancelled): the session drops it.
    task_closed: bool = False
    # The founder-signed order that lifts the hold: without it a hold stays, whoever sends
    # the message.
    order: FounderOrder | None = None


class TaskClaimedInput(Model):
    task_id: str
    kind: str | None = None
    # Filled in by the session when it checks the claim (never trusted from the sender).
    agent: str | None = None


class GovernorHoldInput(Model):
    """A session's governor holds the task: blocked by a loop, or paused by its cost."""

    kind: Literal["loop", "cost"]
    agent: str
    reason: str
    evidence: dict[str, JsonValue] = Field(default_factory=dict)


class HandoffInput(Model):
    agent: str
    session_key: str
    brief: str
    state: dict[str, JsonValue] = Field(default_factory=dict)


class CostBaselineInput(Model):
    task_id: str
    session_key: str


class FlushInput(Model):
    """The ledger rows (cumulative per session and task) and tool calls not yet written."""

    agent: str
    session_key: str
    task_costs: dict[str, float] = Field(default_factory=dict)
    task_tokens: dict[str, TokenUsage] = Field(default_factory=dict)
    calls: list[ToolCallRecord] = Field(default_factory=list)


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
        "deploy_approval",
        "deploy_refused",
        "deploy_failed",
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
        if self.action:
            return self.action
        return f"tether inbox done {self.id}" if self.id is not None else ""

    @property
    def see(self) -> str:
        """Where to read more, for a notice (`detail["see"]`)."""
        value = self.detail.get("see")
        return value if isinstance(value, str) else ""


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


class RecordSessionInput(Model):
    session: SessionView
    workflow_id: str
    run_id: str


class ExpiryReminderInput(Model):
    now: datetime


# --- deployments ----------------------------------------------------------------------------


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


class DeployRequest(Model):
    service: str = Field(pattern=NAME_PATTERN)
    # A commit, a tag or a branch: resolved to the exact commit when the request is made.
    ref: str = Field(min_length=1, max_length=200, pattern=r"^[^\s~^:?*\[\\]+$")
    agent: str = Field(pattern=NAME_PATTERN)
    reason: str = Field(default="", max_length=500)


class DeployPlan(Model):
    """The service as tether.toml describes it, read by the deployment's first activity."""

    service: str
    repository: str
    commit: str
    ref: str
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
    # base64 of the 64-byte Ed25519 signature; empty means unsigned (always refused).
    signature: str = Field(default="", max_length=200)

    def payload(self) -> bytes:
        fields = [
            "tether-approval/v1",
            self.deployment_id,
            self.service,
            self.ref,
            self.commit,
            self.decision,
            self.reason,
            self.expires_at.isoformat(),
            self.signed_at.isoformat(),
            self.by,
        ]
        return "\n".join(fields).encode()


class ApprovalVerdict(Model):
    accepted: bool
    reason: str
    approval: Approval | None = None


class JudgeInput(Model):
    """An approval as received, to be judged against this deployment and the founder's key."""

    deployment_id: str
    service: str
    ref: str
    commit: str
    received: Approval
    received_at: datetime


class AuditInput(Model):
    deployment_id: str
    service: str
    kind: str
    actor: str = "tether"
    detail: dict[str, JsonValue] = Field(default_factory=dict)
    at: datetime | None = None


class RolloutClaim(Model):
    service: str
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
    repository: str
    commit: str


class StaleVerdict(Model):
    ok: bool
    deployed: str | None = None
    reason: str = ""


class RolloutInput(Model):
    deployment_id: str
    service: str
    ref: str
    commit: str
    step: Literal["rollout", "restart", "rollback"] = "rollout"
    timeout_seconds: float = 600.0


class RolloutResult(Model):
    ok: bool
    exit_code: int | None = None
    summary: str
    output_excerpt: str = ""
    duration_ms: int = 0


class RecordDeployInput(Model):
    deployment_id: str
    service: str
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
    reason: str = ""
    rollout: RolloutResult | None = None
    health: list[CheckEvidence] = Field(default_factory=list)
    rolled_back: bool = False
    finished_at: datetime | None = None


class DeployInput(Model):
    deployment_id: str
    request: DeployRequest


SessionInput.model_rebuild()
SessionView.model_rebuild()
Governor.model_rebuild()
SessionSetup.model_rebuild()


# --- the founder's cockpit: `tether status` ----------------------------------------------------


class AgentStatus(Model):
    agent: str
    session: SessionState | None = None
    runtime: str = ""
    started_at: datetime | None = None
    task_id: str | None = None
    # The share of the context window in use (0.09 is 9%), and this session's spend.
    context_pct: float | None = None
    cost_usd: float | None = None
    # A governor's hold (loop, cost) or a credential blocker, in words.
    hold: str | None = None
    blocker: str | None = None
    # Ended sessions flagged as pseudo-work, and ended sessions, over the agent's history.
    pseudo_work: int = 0
    sessions_ended: int = 0
    # False when the session's workflow could not be asked (its figures are then from PostgreSQL).
    live: bool = True


class DeploymentStatus(Model):
    deployment_id: str
    service: str
    state: str
    ref: str = ""
    commit: str | None = None
    agent: str = ""
    reason: str = ""
    at: datetime | None = None


class QueueStatus(Model):
    service: str
    holder: str | None = None
    waiting: list[str] = Field(default_factory=list)


class CredentialAlert(Model):
    name: str
    ok: bool
    reason: str = ""
    expires_at: datetime | None = None
    days_left: float | None = None


class StatusReport(Model):
    generated_at: datetime
    agents: list[AgentStatus] = Field(default_factory=list)
    task_counts: dict[str, int] = Field(default_factory=dict)
    # Tasks not done or cancelled, the held ones first.
    tasks: list[TaskSummary] = Field(default_factory=list)
    deployments: list[DeploymentStatus] = Field(default_factory=list)
    queues: list[QueueStatus] = Field(default_factory=list)
    # One line each: what stops work now (held tasks, blocked sessions).
    blockers: list[str] = Field(default_factory=list)
    pseudo_work: list[str] = Field(default_factory=list)
    credentials: list[CredentialAlert] = Field(default_factory=list)
    inbox_open: int = 0
    problems: list[str] = Field(default_factory=list)
