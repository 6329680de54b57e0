"""Configuration: `tether.toml` (what Tether governs) and the environment (where it runs).

Secrets are never written in tether.toml: a credential names an environment variable or a file,
and only activities resolve it.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from tether import names as constants
from tether.contracts import MAX_CHECKS, Check, GovernorLimits, Model, Price
from tether.errors import TetherError
from tether.names import GATEWAY_BIND, NAME_PATTERN
from tether.ops.stackfile import config_path_from_env, home_from_env
from tether.runtimes import COMMAND, RUNTIMES

# Workflows one worker process keeps in memory (TETHER_WORKFLOW_CACHE). With 1,000 open tasks
# and 100 sessions a worker holds 139 MB; with the SDK's default of 1,000 and the sandbox, 326 MB
# (scripts/bench_memory.py).
WORKFLOW_CACHE = 200


class Section(Model):
    """A part of tether.toml: each setting's docstring is its description in the schema
    (`TetherConfig.model_json_schema()`), from which the docs' reference is made."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class SecretRef(Section):
    """Where a secret lives: an environment variable or a file, read only inside activities."""

    env: str | None = None
    """The environment variable (of the worker) that holds the secret."""
    file: str | None = None
    """The file that holds the secret (read by the worker; mode 600 advised)."""

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("value", "token", "secret", "password"):
                if key in data:
                    raise ValueError(
                        f"'{key}' would put a secret in tether.toml; reference it instead with "
                        "env = 'VARIABLE_NAME' or file = '/path/to/secret'"
                    )
        return data

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if bool(self.env) == bool(self.file):
            raise ValueError("a secret needs exactly one of env = '...' or file = '...'")
        return self


class CredentialRef(SecretRef):
    """A credential an agent needs, probed before every session of that agent.

    forge_token: `GET /user` on the forge (GitHub's expiry header is read when present).
    http: a request to `probe_url` carrying the credential in `header` (2xx means valid).
    jwt: the token's `exp` claim.  declared: the `expires` date written here.
    """

    kind: Literal["forge_token", "http", "jwt", "declared"] = "http"
    """How it is probed: forge_token, http, jwt or declared."""
    probe_url: str | None = None
    """For kind "http": the URL requested with the credential; a 2xx means valid, a 401 or 403
    rejected.
    """
    header: str = "Authorization"
    """For kind "http": the header that carries the credential."""
    scheme: str = "Bearer"
    """Prefix before the secret in the header ("Bearer", "token"); empty for the bare value."""
    expires: date | None = None
    """For kind "declared" (and any kind, as an upper bound): when the credential expires."""

    @model_validator(mode="after")
    def _needs_for_kind(self) -> CredentialRef:
        if self.kind == "http" and not self.probe_url:
            raise ValueError("an 'http' credential needs probe_url = 'https://...' to probe")
        if self.kind == "declared" and self.expires is None:
            raise ValueError("a 'declared' credential needs expires = YYYY-MM-DD")
        return self


class Forge(Section):
    """The forge the agents' pull requests live on (GitHub REST, or Gitea/Forgejo /api/v1)."""

    kind: Literal["github", "gitea"] = "github"
    """github (REST) or gitea (Gitea and Forgejo's /api/v1)."""
    api_url: str = "https://api.github.com"
    """https://api.github.com, or https://gitea.example.com/api/v1"""
    credential: str | None = None
    """The credential (under [credentials]) the sync and the token probe use."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """How long one request to the forge may take."""

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class Notifications(Section):
    webhook: SecretRef | None = None
    """A Slack-compatible incoming webhook; its URL is a secret, referenced like a credential."""
    webhook_attempts: int = Field(default=8, ge=1, le=100)
    """Each inbox item is delivered by its own workflow (`notify-<id>`), retried with backoff up to
    this many attempts, waiting at most this long between two.
    """
    webhook_max_interval_seconds: float = Field(default=300.0, gt=0, le=24 * 3600)
    """The longest wait between two attempts to deliver an inbox item to the webhook."""
    expiry_reminder_days: list[int] = Field(default_factory=lambda: [14, 7, 1])
    """Days before a credential expires at which the founder is reminded, once each."""
    expiry_check_hours: float = Field(default=24.0, gt=0, le=24 * 7)
    """How often the credential watch schedule runs."""

    @field_validator("expiry_reminder_days")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(d <= 0 for d in value):
            raise ValueError("reminder days must be positive")
        return sorted(set(value), reverse=True)


class Sessions(Section):
    max_hours: float = Field(default=12.0, gt=0, le=24 * 7)
    """A session that never reports its end is ended (and its artifact checked) after this long."""
    recent_commit_days: int = Field(default=7, ge=1, le=90)
    """How far back the startup brief looks for commits."""


class Repository(Section):
    path: str
    """The local clone (`~` is expanded). Git checks, the brief and the artifact test read it."""
    default_branch: str = "main"
    """The branch new work is measured against, and agents' worktrees start from."""
    forge_repo: str | None = None
    """"owner/name" on the forge, for pull requests."""
    remote: str | None = "origin"
    """The remote the founder's deployment tags are pushed to and verified from (when the clone has
    it; a clone without it keeps its tags locally).
    """

    @field_validator("path")
    @classmethod
    def _expand(cls, value: str) -> str:
        return str(Path(value).expanduser())


# A host an agent may reach: a name or an IPv4 address, '*.' before a domain, ':PORT' after.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
HOST_ENTRY = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?")


class AgentRunner(Section):
    """`[agents.run]`: how Tether starts the agent itself (`tether run`). Claude Code runs as
    `claude -p PROMPT --output-format stream-json` with the hooks pointing at the gateway;
    runtime "command" runs `command`, an argv template with {prompt}, {session}, {agent} and
    {worktree}. The process gets the agent's token, the gateway's URL, `env`, and the secrets
    `secret_env` names (variable -> a [credentials] entry), read by the worker, nothing else of
    the worker's environment but PATH."""

    binary: str = "claude"
    """The Claude Code CLI to start (a name on PATH or a path)."""
    command: list[str] = Field(default_factory=list)
    """For runtime "command": the argv to start, with {prompt}, {session}, {agent} and {worktree}
    filled in.
    """
    home: str | None = None
    """The process's HOME (Claude Code keeps its settings and transcripts there); default: the
    worker's own. Never inside TETHER_HOME: the gateway reads no transcript from there.
    """
    model: str | None = None
    """The model the runtime is told to use (its own default when unset)."""
    args: list[str] = Field(default_factory=list)
    """Extra arguments after the runtime's own."""
    env: dict[str, str] = Field(default_factory=dict)
    """Variables set in the process's environment (not secrets: use secret_env)."""
    secret_env: dict[str, str] = Field(default_factory=dict)
    """Variable -> a [credentials] entry: read by the worker and masked in the sandbox (the process
    holds a placeholder; the proxy puts the value back toward the hosts it is for).
    """
    stop_grace_seconds: float = Field(default=1, ge=0, le=120)
    """SIGTERM, then SIGKILL after this long. Claude Code (2.1.332) does not exit on SIGTERM while
    it waits for a hook, which is where a hold finds it: the grace is all the delay.
    """
    crash_limit: int = Field(default=5, ge=1, le=50)
    """A crash restarts after `restart_backoff_seconds`, doubling up to 60 s; this many identical
    crashes in a row are a loop: the run stops and the founder is told.
    """
    restart_backoff_seconds: float = Field(default=2, ge=0, le=600)
    """How long after a crash the process starts again; doubled after each, up to 60 s."""
    usage: Literal["stream-json", "none"] | None = None
    """How the runner reads the process's own usage from its output: "stream-json" (Claude Code's:
    `assistant` messages' usage, once per message id, and the final `result` with `total_cost_usd`
    and `modelUsage`), or "none". Default: stream-json for claude-code, none for a command (say
    "stream-json" when your agent prints that shape).
    """

    def reads_usage(self, runtime: str) -> bool:
        spoken = RUNTIMES.get(runtime)
        return (self.usage or (spoken.usage if spoken else "none")) != "none"


class Agent(Section):
    name: str = Field(pattern=NAME_PATTERN)
    """The agent's name: lower-case letters, digits, '.', '_', '-'. Every command, token and
    workflow names it so.
    """
    role: str = "coding"
    """What the agent does (coding, devops, security, marketing…): shown in the status and the
    brief.
    """
    runtime: str = "claude-code"
    """What runs the agent: claude-code, codex, gemini, cursor, or command (its `run.command`, with
    no hooks of its own).
    """
    credentials: list[str] = Field(default_factory=list)
    """Names under [credentials] the agent needs: each is probed before every session of the agent,
    and one that fails blocks it.
    """
    repositories: list[str] = Field(default_factory=list)
    """Names under [repositories] the agent works in: its brief reads them, its deliverable is a
    commit in them, and `tether run` makes its worktree of the first.
    """
    forge_login: str | None = None
    """The agent's login on the forge (pull request authors); defaults to its name."""
    branch: str | None = None
    """The branch the agent delivers on; defaults to the branch checked out at session start."""
    fail_closed: bool = True
    """When Tether cannot be reached, deny the agent's tool calls (true) or let them through."""
    thresholds: dict[str, float | int] = Field(default_factory=dict)
    """Overrides of [thresholds] for this agent only, e.g. { context_window = 1000000 }."""
    run: AgentRunner = Field(default_factory=AgentRunner)
    """How Tether starts the agent's process itself (`tether run`, a wake)."""
    wake: str | None = Field(default=None, pattern=r"^every [1-9][0-9]*(s|m|h)$")
    """Wake the agent when it is idle and has work: "every 15m" (a Temporal Schedule checks, and
    runs it with `tether run` when a task is assigned to it or open for it to claim).
    """
    isolation: Literal["sandbox", "none"] = "sandbox"
    """How Tether runs the agent's process (`tether run`, `tether sandbox`): "sandbox" (the default)
    sees only its worktree and its home, reaches only the gateway, its runtime's model API and
    `network`, and holds no secret (tether/ops/sandbox.py); "none" runs it as the worker's own user,
    with everything that user can read and reach.
    """
    network: list[str] = Field(default_factory=list, max_length=200)
    """Hosts the sandboxed agent may reach beyond the gateway and its model API: "github.com",
    "*.npmjs.org", "api.example.com:443" (a port limits the entry to it).
    """

    @field_validator("network")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for entry in value:
            host = entry.removeprefix("*.").partition(":")[0]
            if not HOST_ENTRY.fullmatch(entry) or ("." not in host and host != "localhost"):
                raise ValueError(
                    f"network entry {entry!r} is not a host: write a name like 'github.com', "
                    "a wildcard under a domain like '*.npmjs.org', or either with ':PORT'"
                )
        return value

    def wake_every(self) -> timedelta | None:
        if self.wake is None:
            return None
        amount, unit = int(self.wake.split()[1][:-1]), self.wake[-1]
        return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours"}[unit]: amount})

    @property
    def login(self) -> str:
        return self.forge_login or self.name


class Production(Section):
    """`[services.NAME.production]`: the service's production environment. It takes only a
    commit that ran healthy in staging for `soak_minutes`, approved with a second founder-signed
    tag `production/<service>/<n>`, and has its own lock, cooldown and stale-base guard. Any
    setting left out is the service's (staging's) own."""

    soak_minutes: float = Field(default=30, ge=0)
    """How long a commit must have run healthy in staging before production takes it."""
    rollout: str | None = Field(default=None, min_length=1)
    """Production's rollout command (default: staging's)."""
    restart: str | None = None
    """Production's restart command (default: staging's)."""
    rollback: str | None = None
    """Production's rollback command (default: staging's)."""
    cwd: str | None = None
    """Production's folder (default: staging's)."""
    health_checks: list[Check] | None = Field(default=None, max_length=MAX_CHECKS)
    """Production's health checks (default: staging's)."""
    cooldown_minutes: float | None = Field(default=None, ge=0)
    """Production's cooldown (default: staging's)."""
    cooldown_mode: Literal["refuse", "wait"] | None = None
    """Production's cooldown mode (default: staging's)."""
    approval_ttl_minutes: float | None = Field(default=None, gt=0)
    """How long an approval for production stays valid (default: staging's)."""
    request_ttl_hours: float | None = Field(default=None, gt=0)
    """How long a production request waits (default: staging's)."""
    rollout_timeout_seconds: float | None = Field(default=None, gt=0, le=24 * 3600)
    """How long production's rollout may run (default: staging's)."""
    rollout_heartbeat_seconds: float | None = Field(default=None, ge=6, le=600)
    """Production's rollout heartbeat (default: staging's)."""


class Service(Section):
    """A deployable service. Commands are shell templates; {service}, {ref}, {commit},
    {deployment}, {environment} and {tag} (the founder's tag, or the ref without one) are filled
    in (shell-quoted) and also set as TETHER_SERVICE, TETHER_REF, TETHER_COMMIT,
    TETHER_DEPLOYMENT, TETHER_ENVIRONMENT and TETHER_TAG. They run in the repository's folder
    unless `cwd` says otherwise, and must tolerate running twice (a worker lost mid-rollout is
    retried). What is set here is staging; `[services.NAME.production]` adds production."""

    repository: str
    """The [repositories] entry the service is built from."""
    rollout: str = Field(min_length=1)
    """The shell command that rolls a commit out (see the placeholders above)."""
    restart: str | None = None
    """Run after the rollout, if set."""
    rollback: str | None = None
    """Run when the rollout or the health checks fail, if set."""
    cwd: str | None = None
    """The folder the commands run in (default: the repository's)."""
    health_checks: list[Check] = Field(default_factory=list, max_length=MAX_CHECKS)
    """Checks (as a task's) that must pass after the rollout; failing ones roll back."""
    cooldown_minutes: float = Field(default=30, ge=0)
    """At most one rollout per this many minutes, across all agents and workers (0: no limit)."""
    cooldown_mode: Literal["refuse", "wait"] = "refuse"
    """A request inside the cooldown is refused with the time left, or waits for it to end."""
    approval_ttl_minutes: float = Field(default=60, gt=0)
    """How long a founder's approval stays valid, and how long a request waits for one."""
    request_ttl_hours: float = Field(default=24, gt=0)
    """How long a deployment request waits in the queue before it expires."""
    rollout_timeout_seconds: float = Field(default=600, gt=0, le=24 * 3600)
    """How long the rollout command may run."""
    rollout_heartbeat_seconds: float = Field(default=20, ge=6, le=600)
    """A worker lost mid-rollout is noticed after this long without its heartbeat; the rollout then
    runs again on another worker.
    """
    signed_tags: bool = True
    """The approval is a founder-signed tag `<environment>/<service>/<n>` on the approved commit
    (`tether approve` makes and pushes it); the rollout runs only while it verifies.
    """
    production: Production | None = None
    """The production environment, if the service has one."""

    def environments(self) -> list[str]:
        return ["staging", "production"] if self.production else ["staging"]

    def settings(self, environment: str) -> Service:
        """The service as it deploys to `environment`: production's settings over staging's."""
        if environment == "staging":
            return self
        if environment != "production" or self.production is None:
            raise ValueError(
                f"no {environment} environment: add [services.<name>.production] to tether.toml"
            )
        changes = {
            k: v
            for k, v in self.production.model_dump(exclude={"soak_minutes"}).items()
            if v is not None
        }
        if self.production.health_checks is not None:
            changes["health_checks"] = list(self.production.health_checks)
        return self.model_copy(update=changes)


class Founder(Section):
    """The founder's public key (base64 of 32 raw Ed25519 bytes), from `tether keygen`. Only
    approvals signed with the matching private key are accepted; the worker never sees that."""

    public_key: str | None = None
    """The founder's public key, base64 (the line `tether keygen` prints). Unset:
    $TETHER_HOME/founder.pub.
    """
    public_key_file: str | None = None
    """Or a file holding it."""

    @model_validator(mode="after")
    def _valid_key(self) -> Founder:
        if self.public_key and self.public_key_file:
            raise ValueError("give public_key or public_key_file, not both")
        if self.public_key:
            from tether.trust.seals import parse_public

            parse_public(self.public_key, "founder public key")
        return self

    def key_text(self) -> str | None:
        if self.public_key:
            return self.public_key
        if self.public_key_file:
            try:
                return Path(self.public_key_file).expanduser().read_text().strip()
            except OSError:
                return None
        return None


class Gateway(Founder):
    """The gateway's public key (base64), which workers verify agents' reports with. Unset:
    $TETHER_HOME/gateway.pub, which `tether up` writes beside the gateway's private key."""

    public_key: str | None = None
    """The gateway's public key, base64. Unset: $TETHER_HOME/gateway.pub."""
    public_key_file: str | None = None
    """Or a file holding it."""


class Thresholds(Section):
    """The governors' limits; `[thresholds]` for everyone, `[agents.thresholds]` per agent."""

    context_compact: float = Field(default=0.70, gt=0, lt=1)
    """The share of the context window at which the agent is told to compact."""
    context_trim: float = Field(default=0.85, gt=0, lt=1)
    """The share at which it is told to trim to the essential rules."""
    context_handoff: float = Field(default=0.95, gt=0, lt=1)
    """The share at which its state is archived and the next session starts from the handoff brief.
    """
    context_rearm_margin: float = Field(default=0.05, ge=0, lt=0.5)
    """A stage fires again only after usage fell this far below it, or after a compaction."""
    context_window: int = Field(default=200_000, ge=1000)
    """The model's context window in tokens (Claude: 200000, or 1000000 for 1M-context models)."""
    loop_limit: int = Field(default=5, ge=2, le=100)
    """The same failing action this many times, without a success in between, stops the work."""
    cost_warn_ratio: float = Field(default=3.0, gt=1)
    """A task's cost above this multiple of the average for its kind warns the founder."""
    cost_pause_ratio: float = Field(default=5.0, gt=1)
    """Above this multiple, the task is paused until the founder resumes it."""
    cost_window: int = Field(default=20, ge=1, le=1000)
    """The rolling average covers this many of the most recently completed tasks ..."""
    cost_min_history: int = Field(default=5, ge=1)
    """... and needs at least this many; with fewer, the absolute ceiling applies instead."""
    cost_ceiling_usd: float = Field(default=25.0, gt=0)
    """With too little history: pause above this (USD), warn above warn/pause ratio of it."""

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.context_compact < self.context_trim < self.context_handoff:
            raise ValueError("context thresholds must rise: compact < trim < handoff")
        if not self.cost_warn_ratio < self.cost_pause_ratio:
            raise ValueError("cost_warn_ratio must be below cost_pause_ratio")
        return self


class Budget(Section):
    """Hard budgets beside the anomaly governor (`[budget]`), in USD, in UTC days and months.

    Crossing one holds the agent's session (the runner ends its process, the gateway denies
    its tools) until the founder raises it with a signed order (`tether budget raise`)."""

    agent_daily_usd: float | None = Field(default=None, gt=0)
    """Every agent's daily limit, unless `[budget.agents]` names its own."""
    team_monthly_usd: float | None = Field(default=None, gt=0)
    """The whole team's monthly limit."""
    agents: dict[str, float] = Field(default_factory=dict)
    """Per-agent daily limits: { coder = 40.0 }."""

    @field_validator("agents")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(name for name, usd in value.items() if usd <= 0)
        if bad:
            raise ValueError(f"budget.agents limits must be above 0 (not: {', '.join(bad)})")
        return value

    def daily_for(self, agent: str) -> float | None:
        return self.agents.get(agent, self.agent_daily_usd)

    def applies_to(self, agent: str) -> bool:
        return self.daily_for(agent) is not None or self.team_monthly_usd is not None


class Retention(Section):
    """How long the record keeps its detail (`[retention]`).

    Closed workflows leave Temporal after `temporal_days` (the namespace's retention, set by
    `tether up` and `tether retention`); their record stays in PostgreSQL. `tether prune` rolls
    the tool-call log and the cost ledger older than `ledger_days` into one row per agent, task
    and day, and removes what the audit chain holds (cleared inbox items, refused messages and
    connections) once as old."""

    ledger_days: int = Field(default=90, ge=7, le=3660)
    """Days the tool-call log, the cost ledger and cleared inbox items keep their detail; `tether
    prune --apply` rolls older rows up.
    """
    temporal_days: int = Field(default=30, ge=1, le=3660)
    """Days Temporal keeps closed workflows (the namespace's retention, set by the workers at
    start).
    """


# List prices in USD per million tokens when tether.toml names none. Prices change: set
# [pricing."model-prefix"] to what you pay. The longest matching prefix of the model id wins.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4-1": Price(input=15.0, output=75.0, cache_read=1.5, cache_write=18.75),
    "claude-opus-4-0": Price(input=15.0, output=75.0, cache_read=1.5, cache_write=18.75),
    "claude-opus": Price(input=5.0, output=25.0, cache_read=0.5, cache_write=6.25),
    "claude-sonnet": Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75),
    "claude-haiku": Price(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25),
    "default": Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75),
}


class TetherConfig(Section):
    agents: list[Agent] = Field(default_factory=list)
    repositories: dict[str, Repository] = Field(default_factory=dict)
    credentials: dict[str, CredentialRef] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    forge: Forge | None = None
    notifications: Notifications = Field(default_factory=Notifications)
    sessions: Sessions = Field(default_factory=Sessions)
    pricing: dict[str, Price] = Field(default_factory=dict)
    founder: Founder = Field(default_factory=Founder)
    gateway: Gateway = Field(default_factory=Gateway)
    budget: Budget = Field(default_factory=Budget)
    retention: Retention = Field(default_factory=Retention)

    def agent(self, name: str) -> Agent | None:
        return next((a for a in self.agents if a.name == name), None)

    def thresholds_for(self, agent: Agent) -> Thresholds:
        return Thresholds.model_validate({**self.thresholds.model_dump(), **agent.thresholds})

    def limits_for(self, agent: Agent) -> GovernorLimits:
        t = self.thresholds_for(agent)
        return GovernorLimits(
            context_window=t.context_window,
            compact=t.context_compact,
            trim=t.context_trim,
            handoff=t.context_handoff,
            rearm_margin=t.context_rearm_margin,
            loop_limit=t.loop_limit,
            cost_warn_ratio=t.cost_warn_ratio,
            cost_pause_ratio=t.cost_pause_ratio,
            cost_window=t.cost_window,
            cost_min_history=t.cost_min_history,
            cost_ceiling_usd=t.cost_ceiling_usd,
            prices={**DEFAULT_PRICES, **self.pricing},
            budgeted=self.budget.applies_to(agent.name),
        )

    @model_validator(mode="after")
    def _references_resolve(self) -> TetherConfig:
        names = [a.name for a in self.agents]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"agent names must be unique; repeated: {', '.join(dupes)}")
        for agent in self.agents:
            for var, cred in agent.run.secret_env.items():
                if cred not in self.credentials:
                    raise ValueError(
                        f"agent '{agent.name}' run.secret_env.{var} names credential '{cred}', "
                        "which is not defined under [credentials]"
                    )
            if agent.runtime not in (*RUNTIMES, COMMAND):
                raise ValueError(
                    f"agent '{agent.name}' has runtime '{agent.runtime}', which Tether does not "
                    f"know: use one of {', '.join((*RUNTIMES, COMMAND))}"
                )
            if agent.runtime == COMMAND and not agent.run.command:
                raise ValueError(
                    f"agent '{agent.name}' has runtime 'command' but no run.command: give the "
                    "argv to start it, e.g. command = ['my-agent', '--prompt', '{prompt}']"
                )
            for cred in agent.credentials:
                if cred not in self.credentials:
                    raise ValueError(
                        f"agent '{agent.name}' names credential '{cred}', which is not defined "
                        "under [credentials]"
                    )
            for repo in agent.repositories:
                if repo not in self.repositories:
                    raise ValueError(
                        f"agent '{agent.name}' names repository '{repo}', which is not defined "
                        "under [repositories]"
                    )
        unknown = sorted(set(self.budget.agents) - {a.name for a in self.agents})
        if unknown:
            raise ValueError(
                f"budget.agents names {', '.join(unknown)}, not an agent under [[agents]]"
            )
        if self.forge and self.forge.credential and self.forge.credential not in self.credentials:
            raise ValueError(
                f"forge.credential names '{self.forge.credential}', which is not defined under "
                "[credentials]"
            )
        for agent in self.agents:
            try:
                self.thresholds_for(agent)
            except ValidationError as exc:
                problems = validation_problems(exc)
                raise ValueError(f"agent '{agent.name}' thresholds: {problems}") from None
        for name, service in self.services.items():
            if service.repository not in self.repositories:
                raise ValueError(
                    f"service '{name}' names repository '{service.repository}', which is not "
                    "defined under [repositories]"
                )
        return self


def validation_problems(exc: ValidationError) -> str:
    """The problems on one line: `where: what; where: what`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    )


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: where, what was found, what is expected."""
    lines = [f"{source} is not valid:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            lines.append(f"  {where}: required, but missing")
        elif err["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown field (check the spelling; `tether init` shows them)")
        elif (
            err["type"] == "string_pattern_mismatch"
            and (err.get("ctx") or {}).get("pattern") == NAME_PATTERN
        ):
            lines.append(
                f"  {where}: must be a name of 1 to 64 lower-case letters, digits, '.', '_' or "
                f"'-', starting with a letter or digit (got {err.get('input')!r})"
            )
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
            lines.append(f"  {where}: {msg}{shown}")
    return "\n".join(lines)


def load_config(path: Path | None) -> TetherConfig:
    """Load tether.toml; a missing file at the default location means an empty configuration."""
    if path is None:
        return TetherConfig()
    if not path.exists():
        raise TetherError(f"config file {path} does not exist; `tether init` writes an example")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TetherError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return TetherConfig.model_validate(data)
    except ValidationError as exc:
        raise TetherError(describe_validation_error(exc, str(path))) from exc


class Settings(Section):
    """Where Tether runs, from the environment (the same variables in docker-compose.yml)."""

    home: Path
    temporal_address: str | None = None
    namespace: str = constants.DEFAULT_NAMESPACE
    task_queue: str = constants.DEFAULT_TASK_QUEUE
    database_url: str | None = None
    database_password_file: Path | None = None
    """A file holding DATABASE_URL's password (a Docker or Kubernetes secret, the embedded server's
    own): the URL then names no password, so no process's environment shows it.
    """
    config_path: Path | None = None
    temporal_port: int = constants.TEMPORAL_PORT
    """Ports of the embedded stack that `tether up` starts."""
    ui_port: int = constants.TEMPORAL_UI_PORT
    http_port: int = constants.TEMPORAL_HTTP_PORT
    postgres_port: int = constants.POSTGRES_PORT
    otel_exporter: Literal["console", "otlp"] | None = None
    """"console" prints OpenTelemetry spans, "otlp" sends them to OTEL_EXPORTER_OTLP_ENDPOINT; unset
    means traces are not exported.
    """
    metrics_bind: str | None = None
    """host:port on which workers serve Temporal SDK metrics for Prometheus (/metrics)."""
    gateway_bind: str = GATEWAY_BIND
    """Where the gateway listens, and the URL agents' hooks and commands reach it at."""
    gateway_url: str | None = None
    worker_key: Path | None = None
    """Private keys (PEM files): the workers' (shared by every worker process) and the gateway's.
    Unset: worker.key and gateway.key under TETHER_HOME, which `tether up` makes.
    """
    gateway_key: Path | None = None
    gateway_tls_cert: Path | None = None
    """TLS for the gateway (a cluster's agents reach it over the network): its certificate and key
    (PEM), and the certificate agents trust it by (default: the certificate itself, for a
    self-signed one). Without them it speaks plain HTTP (on loopback, `tether up`).
    """
    gateway_tls_key: Path | None = None
    gateway_tls_ca: Path | None = None
    max_agents: int = 4
    """How many agents' processes one worker process runs at once (the rest wait their turn)."""
    session_check_seconds: float = 300.0
    """How often the runner asks whether a running process's session is still open: one closed from
    outside (terminated in the Web UI) has its process ended, not left running.
    """
    workflow_cache: int = WORKFLOW_CACHE
    """How many workflows one worker process keeps in memory; the others (idle tasks, quiet
    sessions) are evicted and replayed from their history when a message comes.
    """
    workflow_sandbox: bool = False
    """Run workflow code in Temporal's sandbox (workflows/registry.py says what it costs)."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        home = home_from_env(env)
        config_path = config_path_from_env(env, home)
        return cls(
            home=home,
            temporal_address=env.get("TEMPORAL_ADDRESS") or None,
            namespace=env.get("TEMPORAL_NAMESPACE") or constants.DEFAULT_NAMESPACE,
            task_queue=env.get("TETHER_TASK_QUEUE") or constants.DEFAULT_TASK_QUEUE,
            database_url=env.get("DATABASE_URL") or None,
            database_password_file=_path(env.get("TETHER_DATABASE_PASSWORD_FILE")),
            config_path=config_path,
            temporal_port=_port(env, "TETHER_TEMPORAL_PORT", constants.TEMPORAL_PORT),
            ui_port=_port(env, "TETHER_UI_PORT", constants.TEMPORAL_UI_PORT),
            http_port=_port(env, "TETHER_HTTP_PORT", constants.TEMPORAL_HTTP_PORT),
            postgres_port=_port(env, "TETHER_POSTGRES_PORT", constants.POSTGRES_PORT),
            otel_exporter=_otel(env.get("TETHER_OTEL_EXPORTER")),
            metrics_bind=_bind(env.get("TETHER_METRICS_BIND")),
            gateway_bind=_bind(env.get("TETHER_GATEWAY_BIND"), "TETHER_GATEWAY_BIND")
            or GATEWAY_BIND,
            gateway_url=env.get("TETHER_GATEWAY_URL") or None,
            worker_key=_path(env.get("TETHER_WORKER_KEY")),
            gateway_key=_path(env.get("TETHER_GATEWAY_KEY")),
            gateway_tls_cert=_path(env.get("TETHER_GATEWAY_TLS_CERT")),
            gateway_tls_key=_path(env.get("TETHER_GATEWAY_TLS_KEY")),
            gateway_tls_ca=_path(env.get("TETHER_GATEWAY_TLS_CA")),
            max_agents=_count(env, "TETHER_MAX_AGENTS", 4),
            workflow_cache=_count(env, "TETHER_WORKFLOW_CACHE", WORKFLOW_CACHE),
            workflow_sandbox=_switch(env, "TETHER_WORKFLOW_SANDBOX"),
        )

    @property
    def gateway_address(self) -> str:
        """The URL agents reach the gateway at."""
        if self.gateway_url:
            return self.gateway_url.rstrip("/")
        host, _, port = self.gateway_bind.rpartition(":")
        if host in ("0.0.0.0", "::", "[::]", ""):
            host = "127.0.0.1"
        return f"{'https' if self.gateway_tls else 'http'}://{host}:{port}"

    @property
    def gateway_tls(self) -> tuple[Path, Path] | None:
        """The gateway's certificate and key, when it serves TLS."""
        if self.gateway_tls_cert is None and self.gateway_tls_key is None:
            return None
        if self.gateway_tls_cert is None or self.gateway_tls_key is None:
            raise TetherError(
                "the gateway's TLS needs both TETHER_GATEWAY_TLS_CERT and TETHER_GATEWAY_TLS_KEY "
                "(PEM files); set both, or neither for plain HTTP"
            )
        return self.gateway_tls_cert, self.gateway_tls_key

    @property
    def gateway_trust(self) -> Path | None:
        """The certificate agents verify the gateway by, when it serves TLS."""
        tls = self.gateway_tls
        return None if tls is None else self.gateway_tls_ca or tls[0]


def _switch(env: dict[str, str], name: str) -> bool:
    raw = (env.get(name) or "off").strip().lower()
    if raw not in ("on", "off", "1", "0", "true", "false"):
        raise TetherError(f"{name}={env.get(name)!r} is not a switch; expected on or off")
    return raw in ("on", "1", "true")


def _count(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise TetherError(f"{name}={raw!r} is not a count; expected a whole number of 1 or more")
    return int(raw)


def _path(raw: str | None) -> Path | None:
    return Path(raw).expanduser() if raw else None


def _port(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise TetherError(f"{name}={raw!r} is not a port number; expected 1-65535")
    return int(raw)


def _otel(raw: str | None) -> Literal["console", "otlp"] | None:
    if not raw or raw == "none":
        return None
    if raw in ("console", "otlp"):
        return "console" if raw == "console" else "otlp"
    raise TetherError(
        f"TETHER_OTEL_EXPORTER={raw!r} is not supported; expected 'console', 'otlp' (with "
        "OTEL_EXPORTER_OTLP_ENDPOINT) or 'none'"
    )


def _bind(raw: str | None, name: str = "TETHER_METRICS_BIND") -> str | None:
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TetherError(
            f"{name}={raw!r} is not host:port; e.g. 127.0.0.1:9464 (or 0.0.0.0:9464 to be "
            "reached from outside this machine)"
        )
    return raw


# The environment variables Settings reads; docker-compose.yml is checked against this list.
# How a client reaches a server that wants TLS or an API key (Temporal Cloud): the variables
# Temporal's own CLI reads (https://docs.temporal.io/cli/setup-cli#environment-variables), read
# by tether.client.connection.cloud_options.
CLOUD_VARIABLES = (
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_NAME",
)

ENVIRONMENT_VARIABLES = (
    "TETHER_HOME",
    "TETHER_CONFIG",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TETHER_TASK_QUEUE",
    "DATABASE_URL",
    "TETHER_DATABASE_PASSWORD_FILE",
    "TETHER_TEMPORAL_PORT",
    "TETHER_UI_PORT",
    "TETHER_HTTP_PORT",
    "TETHER_POSTGRES_PORT",
    "TETHER_OTEL_EXPORTER",
    "TETHER_METRICS_BIND",
    "TETHER_GATEWAY_BIND",
    "TETHER_GATEWAY_URL",
    "TETHER_WORKER_KEY",
    "TETHER_GATEWAY_KEY",
    "TETHER_GATEWAY_TLS_CERT",
    "TETHER_GATEWAY_TLS_KEY",
    "TETHER_GATEWAY_TLS_CA",
    "TETHER_MAX_AGENTS",
    # Read by OpenTelemetry's OTLP exporter itself when TETHER_OTEL_EXPORTER=otlp.
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    *CLOUD_VARIABLES,
)


EXAMPLE_CONFIG = """\
# tether.toml: what Tether governs. Validated on load; unknown fields are errors.
# Secrets are never written here: credentials name an environment variable or a file.

# Repositories the agents work in (local clones). Git checks and the startup brief read them.
[repositories.app]
path = "~/src/app"
default_branch = "main"
# forge_repo = "acme/app"        # owner/name on GitHub or Gitea, for pull requests

# Credentials, by reference only. Each agent's are probed before every session it starts.
[credentials.github]
kind = "forge_token"             # forge_token | http | jwt | declared
env = "GITHUB_TOKEN"             # or: file = "~/.secrets/github-token"
# expires = 2027-03-01           # optional: a known expiry date, for reminders

# The forge with the agents' pull requests (for the startup brief and the token probe).
[forge]
kind = "github"                  # github | gitea (Gitea and Forgejo: api_url ends in /api/v1)
api_url = "https://api.github.com"
credential = "github"

# The agents of the team.
[[agents]]
name = "coder"
role = "coding"
runtime = "claude-code"
credentials = ["github"]
repositories = ["app"]
# forge_login = "coder-bot"      # its login on the forge, if not its name
# branch = "coder/work"          # where it delivers; default: the branch checked out
fail_closed = true               # deny tool calls when Tether cannot be reached

# Services that agents may deploy: one deployment per service at a time, only with the
# founder's signed approval (a signed tag staging/api/<n>), never from a commit older than the
# one running. What is set here is staging.
[services.api]
repository = "app"
rollout = "kubectl set image deploy/api api=registry/api:{ref}"  # {commit} {tag} {environment}
# restart = "kubectl rollout restart deploy/api"
# rollback = "kubectl rollout undo deploy/api"
cooldown_minutes = 30            # one rollout per 30 minutes; inside it: refuse (or "wait")
cooldown_mode = "refuse"
approval_ttl_minutes = 60
[[services.api.health_checks]]
kind = "http"
url = "https://api.example.com/health"
retry_for_seconds = 120
# Production: only a commit healthy in staging for soak_minutes, with the founder's second tag
# production/api/<n>; anything not set here is staging's.
# [services.api.production]
# soak_minutes = 60
# rollout = "kubectl --context prod set image deploy/api api=registry/api:{ref}"

# The founder's public key from `tether keygen`; approvals must be signed with its private half.
# [founder]
# public_key = "..."

# Founder notifications: inbox rows in PostgreSQL, and a Slack-compatible webhook if set.
[notifications]
# webhook = { env = "TETHER_WEBHOOK_URL" }
expiry_reminder_days = [14, 7, 1]
expiry_check_hours = 24

[sessions]
max_hours = 12                   # a session that never ends is ended (and checked) after this
recent_commit_days = 7

# Guardrail thresholds.
[thresholds]
context_compact = 0.70
context_trim = 0.85
context_handoff = 0.95
context_window = 200000          # tokens; per agent: [agents.thresholds] context_window = ...
loop_limit = 5                   # the same failing action this often stops the work
cost_warn_ratio = 3.0            # x the rolling average of completed tasks' cost
cost_pause_ratio = 5.0
cost_window = 20                 # completed tasks in the rolling average
cost_min_history = 5             # fewer than this: cost_ceiling_usd applies instead
cost_ceiling_usd = 25.0

# What tokens cost, USD per million, by model-id prefix (defaults: Anthropic list prices).
# [pricing."claude-sonnet"]
# input = 3.0
# output = 15.0
# cache_read = 0.3
# cache_write = 3.75

# How long the record keeps its detail. Closed workflows leave Temporal after temporal_days
# (every worker sets the namespace's retention); `tether prune --apply` sums the tool-call log
# and the cost ledger older than ledger_days into a row per agent, task and day.
[retention]
ledger_days = 90
temporal_days = 30
"""
