"""A small team for session tests: real git repositories, a forge on 127.0.0.1, a fresh database
and a worker configured for them. Agent names are unique per test (one open session per agent
is a rule of the shared Temporal server)."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client

import worker as tether_worker
from tests.support import keys
from tests.support.gateway import GatewayRig, running_gateway
from tests.support.helpers import FakeForge, clean_environment, make_repo
from tether.config import Settings, TetherConfig
from tether.store import Store, connect_pool, migrate

# Distinctive values, so that a test can look for them anywhere they must not be.
TOKEN_ENV = "TETHER_TEST_FORGE_TOKEN"
VALID_TOKEN = f"ghp_valid_{uuid.uuid4().hex}"
REJECTED_TOKEN = f"ghp_revoked_{uuid.uuid4().hex}"
# Where hooks under test keep their transcript cursors (never the user's ~/.tether).
HOOK_HOME = Path(tempfile.mkdtemp(prefix="tether-hook-tests-"))


@dataclass
class Team:
    config: TetherConfig
    store: Store
    task_queue: str
    repo: Path
    forge: FakeForge
    names: dict[str, str] = field(default_factory=dict)
    gateway: GatewayRig | None = None

    def agent(self, role: str) -> str:
        return self.names[role]


def team_config(
    repo: Path, forge: FakeForge, names: dict[str, str], extra: dict[str, Any] | None = None
) -> TetherConfig:
    data: dict[str, Any] = {
        "repositories": {"app": {"path": str(repo), "forge_repo": "acme/app"}},
        "credentials": {"github": {"kind": "forge_token", "env": TOKEN_ENV}},
        "forge": {"kind": forge.kind, "api_url": forge.api_url, "credential": "github"},
        "agents": [
            {
                "name": names["coder"],
                "credentials": ["github"],
                "repositories": ["app"],
                "branch": "coder-work",
            },
            {"name": names["devops"], "repositories": ["app"]},
            {"name": names["security"], "forge_login": "sec-bot", "repositories": ["app"]},
        ],
    }
    for key, value in (extra or {}).items():
        data[key] = value
    return TetherConfig.model_validate(data)


@asynccontextmanager
async def running_team(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    extra: dict[str, Any] | None = None,
    max_agents: int = 4,
    tls: tuple[Path, Path] | None = None,
    session_check_seconds: float = 300.0,
) -> AsyncIterator[Team]:
    suffix = uuid.uuid4().hex[:8]
    names = {role: f"{role}-{suffix}" for role in ("coder", "devops", "security")}
    repo = make_repo(tmp_path / "app")
    config = team_config(repo, forge, names, extra)
    pool = await connect_pool(fresh_db)
    await migrate(pool)
    store = Store(pool)
    queue = f"sessions-{suffix}"
    try:
        async with running_gateway(client, store, config, queue, HOOK_HOME, tls) as gateway:
            # Agents the worker runs itself keep their worktrees under this home and report to
            # this gateway.
            settings = Settings(
                home=tmp_path / "tether-home",
                gateway_url=gateway.url,
                max_agents=max_agents,
                session_check_seconds=session_check_seconds,
                gateway_tls_cert=tls[0] if tls else None,
                gateway_tls_key=tls[1] if tls else None,
            )
            async with tether_worker.build_worker(
                client, queue, store, config, keys.KEYS, settings
            ):
                yield Team(config, store, queue, repo, forge, names, gateway)
    finally:
        await pool.close()


@dataclass
class HookRun:
    code: int
    answer: dict[str, Any] | None
    err: str


async def run_hook(
    event: str,
    agent: str,
    payload: dict[str, Any],
    gateway: GatewayRig | Team | str,
    *flags: str,
    env: dict[str, str] | None = None,
    runtime: str = "claude-code",
) -> HookRun:
    """Run `tether hook RUNTIME EVENT` as the runtime does (Claude Code by default): a process,
    JSON on stdin, the agent's token in its environment; it forwards to `gateway` (a running
    one, or a URL). Another runtime's payload is sent as given."""
    if isinstance(gateway, Team):
        assert gateway.gateway is not None
        gateway = gateway.gateway
    if isinstance(gateway, GatewayRig):
        url, token = gateway.url, await gateway.token(agent)
    else:
        url, token = gateway, "tether_agent_nobody"
    env = clean_environment(
        TETHER_GATEWAY_URL=url,
        TETHER_AGENT_TOKEN=token,
        TETHER_HOME=str(HOOK_HOME),
        **(env or {}),
    )
    body = {"hook_event_name": event, **payload}
    if runtime == "claude-code":
        body = {"transcript_path": "/dev/null", "cwd": "/", **body}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tether",
        "hook",
        runtime,
        event,
        "--agent",
        agent,
        *flags,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(body).encode()), timeout=90)
    assert proc.returncode is not None
    text = out.decode().strip()
    assert "Traceback" not in err.decode(), err.decode()
    return HookRun(proc.returncode, json.loads(text) if text else None, err.decode())


async def report_the_same_failure(client: Client, agent: str, times: int = 5) -> None:
    """The agent reports the same failing command `times` times (five: the loop governor's
    default limit holds it): `kubectl set`, refused with Forbidden."""
    from tether import client as api
    from tether.contracts import Report, ToolCall

    for n in range(times):
        failed = ToolCall(
            tool="Bash", ok=False, action="Bash:kubectl set", signature="Forbidden",
            error="Forbidden", exit_code=1, tool_use_id=f"toolu_{n}",
        )  # fmt: skip
        await api.report(client, agent, Report(tool_call=failed))
