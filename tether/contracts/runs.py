"""Agents Tether runs itself (issue 15): the founder's `tether run`, what the runner launches, and
how a run of the agent's process ended."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tether.contracts.base import Model
from tether.contracts.governors import RuntimeUsage
from tether.names import NAME_PATTERN

RunPhase = Literal["starting", "running", "restarting", "stopped", "finished", "failed"]


class RunRequest(Model):
    """`tether run AGENT`: start the agent's process now, in its session."""

    prompt: str = Field(default="", max_length=20_000)
    task_id: str | None = Field(default=None, pattern=NAME_PATTERN)
    by: str = Field(default="founder", max_length=100)


class StopInput(Model):
    """`tether stop AGENT`: end the agent's process (the session stays, held by nothing)."""

    reason: str = Field(default="stopped by the founder", min_length=1, max_length=500)
    by: str = Field(default="founder", max_length=100)


class AgentLaunch(Model):
    """What the runner starts: no secret travels here (the activity reads them)."""

    agent: str
    runtime: str
    # The runtime's session id (Claude Code's --session-id): the hooks attach to this session.
    runtime_session: str
    prompt: str
    # Continue the runtime session (after a crash or a lost worker) instead of starting it.
    resume: bool = False
    attempt: int = 1
    # Which of the session's processes this is: the runner's figures of its spend name it.
    process: str = ""


class RunOutcome(Model):
    """How one process of the agent ended."""

    exit_code: int | None = None
    # Ended by Tether (a hold, a stop, the session's end).
    stopped: bool = False
    # The runtime's final result, when it printed one (Claude Code's stream-json `result`).
    result: str | None = None
    is_error: bool = False
    # An API status the result names (401 or 403: the model credential was refused).
    api_status: int | None = None
    cost_usd: float | None = None
    turns: int | None = None
    summary: str = ""
    # The last lines of stderr, secrets redacted: what a crash said.
    stderr_tail: str = ""
    # The runtime's own figures for the whole process (from its output), when it gives any.
    usage: RuntimeUsage | None = None

    def crash_fingerprint(self) -> str:
        last = self.stderr_tail.strip().splitlines()[-1:] or [""]
        return f"exit {self.exit_code}: {last[0][:200]}"


class ProcessEnd(Model):
    """How one process ended, as its workflow tells the session: an outcome, or stopped by the
    session (`stopped`), or its worker lost (`lost`), or it could not run (`failure`)."""

    process: str
    outcome: RunOutcome | None = None
    stopped: bool = False
    lost: bool = False
    failure: str | None = Field(default=None, max_length=2_000)


class ProcessInput(Model):
    """An agent's process, run by its own workflow for the session `session_id`."""

    session_id: str
    launch: AgentLaunch
    # How long the process may run (hours for the work, minutes for a compaction).
    timeout_seconds: float = Field(gt=0)
    summary: str = Field(default="", max_length=500)


class ProcessView(Model):
    """What a process's workflow answers (`view_process`): its launch, the stop it was told,
    and its end once it has one."""

    launch: AgentLaunch
    stop: StopInput | None = None
    end: ProcessEnd | None = None


class RunPolicy(Model):
    """From the agent's `[agents.run]`: how its crashes are handled."""

    crash_limit: int = 5
    restart_backoff_seconds: float = 2.0
    # The credentials its process gets (a 401/403 from the model API blocks on them).
    credentials: list[str] = Field(default_factory=list)


class AgentRun(Model):
    """The run of the agent's process inside its session, as the session keeps it."""

    request: RunRequest
    runtime_session: str
    phase: RunPhase = "starting"
    attempts: int = 0
    # Fingerprints of the crashes in a row (five identical ones are a loop).
    crashes: list[str] = Field(default_factory=list)
    last: RunOutcome | None = None
    stop_reason: str | None = None
    cost_usd: float = 0.0
    policy: RunPolicy | None = None
    # Memory stages acted on: compactions Tether ran between two processes.
    compactions: int = 0
    # The process running now, in its own workflow (the session's runs come and go around it):
    # its launch, and how it ended once its workflow has said so.
    current: AgentLaunch | None = None
    ended: ProcessEnd | None = None


class WakeInput(Model):
    """A round of an agent's wake schedule."""

    agent: str = Field(pattern=NAME_PATTERN)


class WakeOutcome(Model):
    started: bool
    reason: str
    task_id: str | None = None
