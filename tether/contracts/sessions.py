"""Agent sessions: startup (ground truth, credentials, brief), the end and the artifact test."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, JsonValue

from tether.contracts.base import Model
from tether.contracts.governors import Governor, GovernorLimits, TokenUsage, ToolCallRecord
from tether.contracts.orders import FounderOrder
from tether.contracts.runs import AgentRun, RunRequest
from tether.contracts.tasks import Artifact, TaskState
from tether.names import NAME_PATTERN


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
    # Run the agent's process as soon as the session has started (the next session after a
    # handoff of a session Tether ran).
    run: RunRequest | None = None


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
    # What Tether told the session and the agent has not read yet (with its next report).
    notices: list[str] = Field(default_factory=list)
    # The agent's process, when Tether runs it (`tether run`).
    run: AgentRun | None = None
    # When the session is ended by Tether if nothing ends it before.
    deadline: datetime | None = None
    # The memory, anti-loop and cost governors (issue 4): carried across continue-as-new.
    governor: Governor = Field(default_factory=lambda: Governor())
    # The session this one continues after a handoff, and the brief it started from.
    handoff_from: str | None = None
    # The sequence of the session's read-model writes: a late write of an older snapshot never
    # overwrites a newer one in PostgreSQL.
    seq: int = 0


class SessionFigures(Model):
    """What `tether status` shows of an open session, kept in its PostgreSQL row by the session
    itself (the status reads PostgreSQL alone, without asking each session): written when any
    of it but the numbers changes, and with every ledger write (the numbers then)."""

    state: SessionState
    task_id: str | None = None
    # The share of the context window in use (0.09 is 9%), and this session's spend.
    context_pct: float | None = None
    cost_usd: float = 0.0
    # A governor's hold and a blocker, in words.
    hold: str | None = None
    blocker: str | None = None
    # The agent's process when Tether runs it: its phase and its id (runtime session:attempt);
    # the runner marks the id it has started, so a process not started yet shows as queued.
    run: str | None = None
    process: str | None = None
    # Workflow time of the figures: a late write of older ones changes nothing.
    at: datetime

    @classmethod
    def of(cls, view: SessionView, at: datetime) -> SessionFigures:
        g, run = view.governor, view.run
        return cls(
            state=view.state,
            task_id=view.task_id,
            context_pct=g.context_pct,
            cost_usd=g.cost_usd,
            hold=f"{g.hold.kind}: {g.hold.reason}" if g.hold is not None else None,
            blocker=view.blocker.describe() if view.blocker is not None else None,
            run=run.phase if run is not None else None,
            process=f"{run.runtime_session}:{run.attempts}" if run is not None else None,
            at=at,
        )

    def shown(self) -> tuple[object, ...]:
        """What a change of rewrites the figures at once (the numbers go with the ledger)."""
        return (self.state, self.task_id, self.hold, self.blocker, self.run, self.process)


class FiguresInput(Model):
    """Write a session's figures into its row (agent, started_at)."""

    agent: str
    started_at: datetime
    figures: SessionFigures


class FlushInput(Model):
    """The ledger rows (cumulative per session and task) and tool calls not yet written."""

    agent: str
    session_key: str
    task_costs: dict[str, float] = Field(default_factory=dict)
    task_tokens: dict[str, TokenUsage] = Field(default_factory=dict)
    calls: list[ToolCallRecord] = Field(default_factory=list)
    day_costs: dict[str, float] = Field(default_factory=dict)
    # The session's figures as of this write (`tether status` reads them from the row).
    figures: FiguresInput | None = None


class NoticeInput(Model):
    """Something Tether tells the agent's session (from the workers: a refused deployment tag):
    the agent reads it with the answer to its next report."""

    kind: Literal["tag_refused"] = "tag_refused"
    text: str = Field(min_length=1, max_length=1000)


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


class Gate(Model):
    """The small answer PreToolUse asks for on every tool call."""

    state: SessionState
    external_id: str | None = None
    deny: str | None = None


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


class HandoffInput(Model):
    agent: str
    session_key: str
    brief: str
    state: dict[str, JsonValue] = Field(default_factory=dict)


class RecordSessionInput(Model):
    session: SessionView
    workflow_id: str
    run_id: str


SessionInput.model_rebuild()
SessionView.model_rebuild()
SessionSetup.model_rebuild()
