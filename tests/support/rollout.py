"""The loop incident, as another runtime's real CLI replays it: a devops agent holding a rollout
task, a `kubectl` the cluster refuses (counting how often it really ran), and Tether's hooks for
the runtime installed in the repository; then the verdict, the same as through Claude Code."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from tests.support.helpers import clean_environment, commit_file, eventually
from tests.support.payloads import KUBECTL_RETRIES, forbidden_kubectl
from tests.support.sessions import Team
from tether import client as api
from tether.contracts import ShellCheck, TaskSpec, TaskState
from tether.hook.install import install_runtime

# The five retries, then the sixth: denied before it runs.
COMMANDS = [*KUBECTL_RETRIES, KUBECTL_RETRIES[0]]


@dataclass
class Rollout:
    agent: str
    task_id: str
    ran: Path
    env: dict[str, str]


async def rollout(client: Client, team: Team, tmp_path: Path, runtime: str, **env: str) -> Rollout:
    assert team.gateway is not None
    bin_dir = forbidden_kubectl(tmp_path / "bin")
    ran = tmp_path / "kubectl-ran"
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(kubectl.read_text().replace("#!/bin/sh\n", f"#!/bin/sh\necho x >> {ran}\n"))
    devops = team.agent("devops")
    task_id = f"rollout-{devops.rsplit('-', 1)[1]}"
    spec = TaskSpec(id=task_id, title="Roll out", checks=[ShellCheck(command="true")])
    await api.create_task(client, team.task_queue, spec)
    await api.claim_task(client, task_id, devops)
    # The repository has the infra folder one of the retries cds into.
    commit_file(team.repo, "infra/api.yaml", "kind: Deployment\n", "infra")
    install_runtime(runtime, team.repo, devops, sys.executable, True, team.gateway.url)
    environment = clean_environment(
        TETHER_AGENT_TOKEN=await team.gateway.token(devops),
        PATH=f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
        **env,
    )
    return Rollout(devops, task_id, ran, environment)


async def run_cli(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    return (out + err).decode(errors="replace")


async def stopped_at_the_fifth(
    client: Client, team: Team, job: Rollout, runtime: str, said: str, shown: str
) -> None:
    """The verdict: a loop hold at the fifth failure, the sixth never ran, the model read why,
    the brief reached it, and the task is blocked."""
    view = await api.session_view(client, job.agent)
    assert view is not None and view.runtime == runtime, said[-2000:]
    hold = view.governor.hold
    assert hold is not None and hold.kind == "loop", said[-2000:]
    assert hold.reason.startswith("kubectl set failed 5 times the same way")
    assert job.ran.read_text().count("x") == 5, said[-2000:]
    assert "stopped by Tether: kubectl set failed 5 times" in shown, shown[-2000:]
    assert f"Tether startup brief for {job.agent}" in shown

    async def blocked() -> bool:
        record = await team.store.get_task(job.task_id)
        return record is not None and record.task.state == TaskState.BLOCKED

    await eventually(blocked, "the task to be blocked")
