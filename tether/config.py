"""Configuration: `tether.toml` (what Tether governs) and the environment (where it runs).

Secrets are never written in tether.toml: a credential names an environment variable or a file,
and only activities resolve it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from tether import constants
from tether.contracts import NAME_PATTERN, Model
from tether.errors import TetherError


class CredentialRef(Model):
    kind: Literal["forge_token", "http", "jwt", "declared"] = "http"
    env: str | None = None
    file: str | None = None
    # For kind "http": the URL probed with the credential.
    probe_url: str | None = None
    # For kind "declared": the date the credential expires.
    expires: str | None = None

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
    def _one_source(self) -> CredentialRef:
        if bool(self.env) == bool(self.file):
            raise ValueError("a credential needs exactly one of env = '...' or file = '...'")
        return self


class Repository(Model):
    path: str
    default_branch: str = "main"
    # "owner/name" on the forge, for pull requests.
    forge_repo: str | None = None

    @field_validator("path")
    @classmethod
    def _expand(cls, value: str) -> str:
        return str(Path(value).expanduser())


class Agent(Model):
    name: str = Field(pattern=NAME_PATTERN)
    role: str = "coding"
    runtime: str = "claude-code"
    credentials: list[str] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=list)


class Service(Model):
    repository: str
    rollout: str
    restart: str | None = None
    rollback: str | None = None
    cooldown_minutes: float = Field(default=30, ge=0)


class Thresholds(Model):
    context_compact: float = Field(default=0.70, gt=0, lt=1)
    context_trim: float = Field(default=0.85, gt=0, lt=1)
    context_handoff: float = Field(default=0.95, gt=0, lt=1)
    loop_limit: int = Field(default=5, ge=2)
    cost_warn_ratio: float = Field(default=3.0, gt=1)
    cost_pause_ratio: float = Field(default=5.0, gt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.context_compact < self.context_trim < self.context_handoff:
            raise ValueError("context thresholds must rise: compact < trim < handoff")
        if not self.cost_warn_ratio < self.cost_pause_ratio:
            raise ValueError("cost_warn_ratio must be below cost_pause_ratio")
        return self


class TetherConfig(Model):
    agents: list[Agent] = Field(default_factory=list)
    repositories: dict[str, Repository] = Field(default_factory=dict)
    credentials: dict[str, CredentialRef] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @model_validator(mode="after")
    def _references_resolve(self) -> TetherConfig:
        names = [a.name for a in self.agents]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"agent names must be unique; repeated: {', '.join(dupes)}")
        for agent in self.agents:
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
        for name, service in self.services.items():
            if service.repository not in self.repositories:
                raise ValueError(
                    f"service '{name}' names repository '{service.repository}', which is not "
                    "defined under [repositories]"
                )
        return self


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


class Settings(Model):
    """Where Tether runs, from the environment (the same variables in docker-compose.yml)."""

    home: Path
    temporal_address: str | None = None
    namespace: str = constants.DEFAULT_NAMESPACE
    task_queue: str = constants.DEFAULT_TASK_QUEUE
    database_url: str | None = None
    config_path: Path | None = None
    # Ports of the embedded stack that `tether up` starts.
    temporal_port: int = constants.TEMPORAL_PORT
    ui_port: int = constants.TEMPORAL_UI_PORT
    http_port: int = constants.TEMPORAL_HTTP_PORT
    postgres_port: int = constants.POSTGRES_PORT
    # "console" prints OpenTelemetry spans; unset means traces are not exported.
    otel_exporter: Literal["console"] | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        home = Path(env.get("TETHER_HOME") or Path.home() / ".tether").expanduser()
        config = env.get("TETHER_CONFIG")
        if config:
            config_path: Path | None = Path(config).expanduser()
        else:
            default = home / "tether.toml"
            config_path = default if default.exists() else None
        return cls(
            home=home,
            temporal_address=env.get("TEMPORAL_ADDRESS") or None,
            namespace=env.get("TEMPORAL_NAMESPACE") or constants.DEFAULT_NAMESPACE,
            task_queue=env.get("TETHER_TASK_QUEUE") or constants.DEFAULT_TASK_QUEUE,
            database_url=env.get("DATABASE_URL") or None,
            config_path=config_path,
            temporal_port=_port(env, "TETHER_TEMPORAL_PORT", constants.TEMPORAL_PORT),
            ui_port=_port(env, "TETHER_UI_PORT", constants.TEMPORAL_UI_PORT),
            http_port=_port(env, "TETHER_HTTP_PORT", constants.TEMPORAL_HTTP_PORT),
            postgres_port=_port(env, "TETHER_POSTGRES_PORT", constants.POSTGRES_PORT),
            otel_exporter=_otel(env.get("TETHER_OTEL_EXPORTER")),
        )


def _port(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise TetherError(f"{name}={raw!r} is not a port number; expected 1-65535")
    return int(raw)


def _otel(raw: str | None) -> Literal["console"] | None:
    if not raw or raw == "none":
        return None
    if raw == "console":
        return "console"
    raise TetherError(
        f"TETHER_OTEL_EXPORTER={raw!r} is not supported; expected 'console' or 'none'"
    )


# The environment variables Settings reads; docker-compose.yml is checked against this list.
ENVIRONMENT_VARIABLES = (
    "TETHER_HOME",
    "TETHER_CONFIG",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TETHER_TASK_QUEUE",
    "DATABASE_URL",
    "TETHER_TEMPORAL_PORT",
    "TETHER_UI_PORT",
    "TETHER_HTTP_PORT",
    "TETHER_POSTGRES_PORT",
    "TETHER_OTEL_EXPORTER",
)


EXAMPLE_CONFIG = """\
# tether.toml: what Tether governs. Validated on load; unknown fields are errors.
# Secrets are never written here: credentials name an environment variable or a file.

# Repositories the agents work in (local clones). Git checks and the startup brief read them.
[repositories.app]
path = "~/src/app"
default_branch = "main"
# forge_repo = "acme/app"        # owner/name on GitHub or Gitea, for pull requests

# Credentials, by reference only.
[credentials.github]
kind = "forge_token"             # forge_token | http | jwt | declared
env = "GITHUB_TOKEN"             # or: file = "~/.secrets/github-token"

# The agents of the team.
[[agents]]
name = "coder"
role = "coding"
runtime = "claude-code"
credentials = ["github"]
repositories = ["app"]

# Services that agents may deploy (one deployment per service at a time).
[services.api]
repository = "app"
rollout = "kubectl set image deploy/api api=registry/api:{tag}"
cooldown_minutes = 30

# Guardrail thresholds.
[thresholds]
context_compact = 0.70
context_trim = 0.85
context_handoff = 0.95
loop_limit = 5
cost_warn_ratio = 3.0
cost_pause_ratio = 5.0
"""
