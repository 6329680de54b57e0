"""Tasks: the spec fixed at creation (checks, artifact), the lifecycle, the evidence."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator

from tether.contracts.base import Model
from tether.names import NAME_PATTERN

MAX_CHECK_ATTEMPTS = 120


MAX_CHECKS = 20


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


class CheckBase(Model):
    # Checks are fixed when the task is created.
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", description="how the check is named in the evidence")
    timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="how long one attempt may take"
    )
    # How long to keep re-running a failing check before it counts as failed, e.g. while a
    # deploy rolls out. Zero means one attempt.
    retry_for_seconds: float = Field(
        default=0.0,
        ge=0,
        le=24 * 3600,
        description="how long a failing check is run again before it counts as failed "
        "(e.g. while a deploy rolls out); 0: one attempt",
    )
    retry_interval_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="the wait between two attempts"
    )

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
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = Field(
        default="GET", description="the request's method"
    )
    url: str = Field(description="the http:// or https:// URL requested")
    expect_status: int = Field(
        default=200, ge=100, le=599, description="the status the answer must have"
    )
    body_contains: str | None = Field(default=None, description="text the body must contain")
    # Dotted path into a JSON response ("data.items.0.id"); with json_value, the value it must have.
    json_field: str | None = Field(
        default=None,
        description='a dotted path into a JSON answer ("data.items.0.id") that must exist',
    )
    json_value: JsonValue = Field(default=None, description="the value json_field must have")
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=600, description="how long one attempt may take"
    )

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
    command: str = Field(min_length=1, description="the shell command run, without secrets")
    cwd: str | None = Field(default=None, description="the folder it runs in")
    expect_exit: int = Field(default=0, description="the exit status it must end with")
    stdout_pattern: str | None = Field(
        default=None, description="a regular expression that must be found in its stdout"
    )

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
    command: str = Field(default="python -m pytest -q", description="the test command")
    cwd: str | None = Field(default=None, description="the folder it runs in")
    min_passed: int = Field(default=1, ge=0, description="at least this many tests must pass")
    timeout_seconds: float = Field(
        default=600.0, gt=0, le=3600, description="how long one attempt may take"
    )


class GitCheck(CheckBase):
    """A commit on a branch touching a path, or a tag pointing at a commit, in a configured repo."""

    kind: Literal["git"] = "git"
    repository: str = Field(min_length=1, description="a [repositories] name from tether.toml")
    branch: str | None = Field(default=None, description="a new commit must be on this branch")
    path: str | None = Field(default=None, description="with branch: the commit must touch it")
    since_task_created: bool = Field(
        default=True,
        description="only commits made after the task was created count, so old work cannot "
        "satisfy a new task",
    )
    tag: str | None = Field(default=None, description="or: this tag must exist")
    commit: str | None = Field(default=None, description="with tag: the commit it must point at")
    timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="how long one attempt may take"
    )

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

    kind: Literal["commit", "file", "url", "deploy"] = Field(
        description="a commit in a repository, a file, a URL answering 2xx, or a finished "
        "deployment of a service"
    )
    repository: str | None = Field(default=None, description="for a commit: the repository")
    branch: str | None = Field(default=None, description="for a commit: its branch")
    path: str | None = Field(
        default=None, description="for a commit: a path it touches; for a file: the file"
    )
    url: str | None = Field(default=None, description="for a url: the URL")
    service: str | None = Field(default=None, description="for a deploy: the service")

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

    id: str = Field(pattern=NAME_PATTERN, description="the task's id (its workflow is task-ID)")
    title: str = Field(min_length=1, max_length=200, description="one line: what is to be done")
    description: str = Field(default="", description="what the agent should know to do it")
    assignee: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="only this agent may claim it"
    )
    artifact: Artifact | None = Field(
        default=None, description="what its sessions must deliver (default: a commit)"
    )
    checks: list[Check] = Field(
        min_length=1, max_length=MAX_CHECKS, description="what done means, run by Tether"
    )
    created_by: str = Field(default="founder", description="who made it")
    kind: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description='what sort of work it is ("bugfix", "feature"); costs are compared within '
        "a kind",
    )

    @field_validator("checks", mode="before")
    @classmethod
    def _need_checks(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError(
                "a task needs at least one check: without one nothing could verify that it is done"
            )
        return value


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


class RunCheckInput(Model):
    task_id: str
    index: int
    check: Check
    task_created_at: datetime | None = None


class RecordTaskInput(Model):
    task: TaskView
    # Every event not yet written, oldest first; writing is idempotent per (task, seq).
    events: list[TaskEvent]


class TaskLedger(Model):
    """What the sessions spent and did on a task: the ledger's rows and what a prune summed of
    older ones (the same figures before and after a prune)."""

    usd: float = 0.0
    tool_calls: int = 0
    failed_tool_calls: int = 0


class TaskRecord(Model):
    """A task as the read model holds it: the view and its append-only history."""

    task: TaskView
    events: list[TaskEvent] = Field(default_factory=list)
    ledger: TaskLedger | None = None
