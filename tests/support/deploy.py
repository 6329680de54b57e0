"""A real local service to deploy: an HTTP server on 127.0.0.1 that serves whatever version
its rollout command last wrote, a rollout script that logs when it starts and ends (to prove
rollouts never overlap), real git history to deploy from, and the founder's real key pair."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client

import worker as tether_worker
from tests.support import keys
from tests.support.helpers import HttpService, commit_file, git, make_repo
from tether import client as api
from tether.config import TetherConfig
from tether.contracts import ApprovalVerdict, DeployRequest, DeployView
from tether.store import Store, connect_pool, migrate
from tether.trust.signing import generate, load_private, sign
from workflows.deployment import DeploymentWorkflow

ROLLOUT = """\
import os, sys, time
state, log, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
deployment, commit = os.environ["TETHER_DEPLOYMENT"], os.environ["TETHER_COMMIT"]
with open(log, "a") as f:
    f.write(f"start {deployment} {time.time():.6f}\\n")
time.sleep(pause)
tmp = state + ".tmp"
with open(tmp, "w") as f:
    f.write(commit)
os.replace(tmp, state)  # idempotent: running it twice leaves the same version
with open(log, "a") as f:
    f.write(f"end {deployment} {time.time():.6f}\\n")
"""


class VersionService(HttpService):
    """GET /version answers the version file's content; 503 while there is none."""

    def __init__(self, state: Path) -> None:
        super().__init__()
        self.state = state
        self.start()

    def answer(self) -> tuple[int, bytes]:
        version = self.state.read_text().strip() if self.state.exists() else ""
        return (200 if version else 503), json.dumps({"version": version}).encode()

    @property
    def url(self) -> str:
        return f"{super().url}/version"


@dataclass
class Rig:
    client: Client
    store: Store
    config: TetherConfig
    task_queue: str
    repo: Path
    service: str
    site: VersionService
    state: Path
    log: Path
    key: Ed25519PrivateKey
    home: Path

    async def request(
        self, ref: str, agent: str = "devops", environment: str = "staging"
    ) -> DeployView:
        request = DeployRequest.model_validate(
            {"service": self.service, "ref": ref, "agent": agent, "environment": environment}
        )
        return await api.request_deploy(self.client, self.task_queue, request)

    def approval(
        self,
        view: DeployView,
        *,
        ttl: timedelta | None = None,
        now: datetime | None = None,
        decision: str = "approve",
        key: Ed25519PrivateKey | None = None,
        **changes: Any,
    ) -> dict[str, Any]:
        """As `tether approve` does: the founder's signed tag on the commit, pushed to the
        repository's remote, then the approval naming it, signed (with `key`, both)."""
        tag = changes.pop("tag", None)
        if tag is None and decision == "approve":
            tag, _ = api.tag_approval(view, self.repo, "origin", key or self.key, "founder")
        approval = api.prepare_approval(
            view,
            decision=decision,
            by="founder",
            reason="ok",
            ttl=ttl,
            now=now or datetime.now(UTC),
            tag=tag,
        ).model_copy(update=changes)
        return sign(approval, key or self.key).model_dump(mode="json")

    async def approve(self, view: DeployView, **kw: Any) -> ApprovalVerdict:
        return await api.submit_approval(self.client, view.deployment_id, self.approval(view, **kw))

    async def deploy(
        self,
        ref: str = "main",
        agent: str = "devops",
        now: datetime | None = None,
        environment: str = "staging",
    ) -> DeployView:
        """Request, approve and wait for the outcome."""
        view = await self.request(ref, agent, environment)
        await self.approve(view, now=now)
        return await self.finish(view)

    async def finish(self, view: DeployView) -> DeployView:
        handle = self.client.get_workflow_handle_for(DeploymentWorkflow.run, view.deployment_id)
        return await asyncio.wait_for(handle.result(), timeout=60)

    def agent_clone(self, path: Path) -> Path:
        """An agent's own clone of the service's repository (the shared bare remote)."""
        remote = git(self.repo, "remote", "get-url", "origin")
        git(path.parent, "clone", "-q", remote, str(path))
        return path

    def rollouts(self) -> list[tuple[str, float, float]]:
        """(deployment, start, end) of every rollout run, in start order."""
        starts: dict[str, list[float]] = {}
        spans = []
        for line in self.log.read_text().splitlines() if self.log.exists() else []:
            kind, deployment, at = line.split()
            if kind == "start":
                starts.setdefault(deployment, []).append(float(at))
            else:
                spans.append((deployment, starts[deployment].pop(0), float(at)))
        return sorted(spans, key=lambda s: s[1])

    def rollout_started(self) -> bool:
        return self.log.exists() and "start" in self.log.read_text()

    def served(self) -> str:
        import urllib.request

        with urllib.request.urlopen(self.site.url, timeout=5) as response:
            return str(json.loads(response.read())["version"])


def rig_config(
    name: str,
    repo: Path,
    state: Path,
    log: Path,
    site: VersionService,
    public: str,
    agents: tuple[str, ...] = ("devops", "coder"),
    **service: Any,
) -> TetherConfig:
    script = log.parent / "rollout.py"
    script.write_text(ROLLOUT)
    pause = service.pop("pause", 0.2)
    return TetherConfig.model_validate(
        {
            "repositories": {"app": {"path": str(repo)}},
            "agents": [{"name": name} for name in agents],
            "founder": {"public_key": public},
            "services": {
                name: {
                    "repository": "app",
                    "rollout": f"{sys.executable} {script} {state} {log} {pause}",
                    "health_checks": [
                        {
                            "kind": "http",
                            "url": site.url,
                            "retry_for_seconds": 2,
                            "retry_interval_seconds": 0.5,
                        }
                    ],
                    **service,
                }
            },
        }
    )


def with_remote(repo: Path, bare: Path) -> Path:
    """A bare remote `origin` for `repo`, as the service's shared repository: the founder's
    tags are pushed there, and anyone else's tags land there too."""
    git(bare.parent, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "HEAD")
    return bare


@asynccontextmanager
async def deploy_rig(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    agents: tuple[str, ...] = ("devops", "coder"),
    **service: Any,
) -> AsyncIterator[Rig]:
    repo = make_repo(tmp_path / "app")
    commit_file(repo, "app.py", "VERSION = 1\n", "v1")
    with_remote(repo, tmp_path / "remote.git")
    state, log = tmp_path / "served-version", tmp_path / "rollouts.log"
    site = VersionService(state)
    home = tmp_path / "founder"
    key_path, public = generate(home)
    # Names unique per test: the lock workflow of a service lives on the shared server.
    suffix = uuid.uuid4().hex[:8]
    name = f"web-{suffix}"
    config = rig_config(name, repo, state, log, site, public, agents, **service)
    pool = await connect_pool(fresh_db)
    await migrate(pool)
    queue = f"deploy-{suffix}"
    try:
        async with tether_worker.build_worker(client, queue, Store(pool), config, keys.KEYS):
            yield Rig(
                client,
                Store(pool),
                config,
                queue,
                repo,
                name,
                site,
                state,
                log,
                load_private(key_path),
                home,
            )
    finally:
        site.stop()
        await pool.close()
