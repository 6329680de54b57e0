"""The real Gemini CLI (npm `@google/gemini-cli`, pinned in tests/runtimes/gemini), headless
(`gemini -p --yolo`) and offline against a scripted Gemini API on 127.0.0.1
(GOOGLE_GEMINI_BASE_URL), governed by the hooks `tether hooks install --runtime gemini` writes:
the brief at the session's start, the loop stopped at the fifth identical failure (read from
the `Exit Code: N` Gemini puts in a shell result), the sixth command denied before it runs, and
the task blocked: the same verdict as through Claude Code."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio.client import Client

from tests.support.claude_code import npm_ci
from tests.support.gemini_api import GeminiApi
from tests.support.helpers import FakeForge, clean_environment, commit_file, eventually
from tests.support.payloads import KUBECTL_RETRIES, forbidden_kubectl
from tests.support.sessions import running_team
from tether import client as api
from tether.contracts import ShellCheck, TaskSpec, TaskState
from tether.hook.install import install_runtime

RUNTIME = Path(__file__).resolve().parent / "runtimes" / "gemini"
GEMINI = RUNTIME / "node_modules" / ".bin" / "gemini"


def ensure_gemini() -> Path:
    return GEMINI if GEMINI.exists() else npm_ci(RUNTIME, GEMINI, "@google/gemini-cli")


async def test_the_real_gemini_cli_is_stopped_at_the_fifth_identical_failure(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    gemini = ensure_gemini()
    bin_dir = forbidden_kubectl(tmp_path / "bin")
    ran = tmp_path / "kubectl-ran"
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(kubectl.read_text().replace("#!/bin/sh\n", f"#!/bin/sh\necho x >> {ran}\n"))
    commands = [*KUBECTL_RETRIES, KUBECTL_RETRIES[0]]  # the sixth: denied before it runs
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        assert team.gateway is not None
        devops = team.agent("devops")
        task_id = f"rollout-{devops.rsplit('-', 1)[1]}"
        spec = TaskSpec(id=task_id, title="Roll out", checks=[ShellCheck(command="true")])
        await api.create_task(client, team.task_queue, spec)
        await api.claim_task(client, task_id, devops)
        commit_file(team.repo, "infra/api.yaml", "kind: Deployment\n", "infra")
        install_runtime("gemini", team.repo, devops, sys.executable, True, team.gateway.url)
        home = tmp_path / "gemini-home"
        (home / ".gemini").mkdir(parents=True)
        (home / ".gemini" / "settings.json").write_text(
            '{"security": {"auth": {"selectedType": "gemini-api-key"}}}\n'
        )
        with GeminiApi(commands, last="I give up on the rollout.") as model:
            env = clean_environment(
                HOME=str(home),
                GEMINI_API_KEY="test-dummy",
                GOOGLE_GEMINI_BASE_URL=model.url,
                # Headless in a folder nobody trusted interactively (its hooks run only then).
                GEMINI_CLI_TRUST_WORKSPACE="true",
                TETHER_AGENT_TOKEN=await team.gateway.token(devops),
                PATH=f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
            )
            proc = await asyncio.create_subprocess_exec(
                str(gemini),
                "-p",
                "Roll out api 1.4.3 to prod.",
                "--yolo",
                "-m",
                "gemini-2.5-pro",
                cwd=team.repo,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
            said = (out + err).decode(errors="replace")

            view = await api.session_view(client, devops)
            assert view is not None and view.runtime == "gemini", said[-2000:]
            hold = view.governor.hold
            assert hold is not None and hold.kind == "loop", said[-2000:]
            assert hold.reason.startswith("kubectl set failed 5 times the same way")
            # Five ran; the sixth was denied by the BeforeTool hook before it could run.
            assert ran.read_text().count("x") == 5, said[-2000:]
            assert "stopped by Tether: kubectl set failed 5 times" in model.shown()
            # The brief reached the model (SessionStart's additionalContext, headless: with the
            # prompt).
            assert f"Tether startup brief for {devops}" in model.shown()
            # Its last answer without the deliverable was refused (AfterAgent): the reason came
            # back to the model as the next prompt.
            assert "No deliverable yet" in model.shown()

        async def blocked() -> bool:
            record = await team.store.get_task(task_id)
            return record is not None and record.task.state == TaskState.BLOCKED

        await eventually(blocked, "the task to be blocked")
