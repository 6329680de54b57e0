"""The real Codex CLI (npm `@openai/codex`, pinned in tests/runtimes/codex), headless (`codex
exec`) and offline against a scripted Responses API on 127.0.0.1, governed by the hooks `tether
hooks install --runtime codex` writes: the brief at the session's start, the loop stopped at the
fifth identical failure, the sixth command denied before it runs (JSON and exit 2), and the task
blocked; the same verdict as through Claude Code.

Codex runs a hook it has not been told to trust silently never (https://developers.openai.com/
codex/hooks: "Non-managed command hooks must be reviewed and trusted before they run"): an
unattended run passes --dangerously-bypass-hook-trust, as here; a founder trusts them once with
/hooks in the CLI.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from temporalio.client import Client

from tests.support.claude_code import npm_ci
from tests.support.helpers import FakeForge, clean_environment, commit_file, eventually
from tests.support.payloads import KUBECTL_RETRIES, forbidden_kubectl
from tests.support.responses_api import CodexTurn, ResponsesApi
from tests.support.sessions import running_team
from tether import client as api
from tether.contracts import ShellCheck, TaskSpec, TaskState
from tether.hook.install import install_runtime

RUNTIME = Path(__file__).resolve().parent / "runtimes" / "codex"
CODEX = RUNTIME / "node_modules" / ".bin" / "codex"


def ensure_codex() -> Path:
    """The pinned Codex CLI, installed with `npm ci` from the committed lock when missing."""
    return CODEX if CODEX.exists() else npm_ci(RUNTIME, CODEX, "@openai/codex")


async def test_the_real_codex_cli_is_stopped_at_the_fifth_identical_failure(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    codex = ensure_codex()
    bin_dir = forbidden_kubectl(tmp_path / "bin")
    ran = tmp_path / "kubectl-ran"
    # The fake kubectl also counts how often it really ran.
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(kubectl.read_text().replace("#!/bin/sh\n", f"#!/bin/sh\necho x >> {ran}\n"))
    turns = [CodexTurn(command=c, input_tokens=20_000) for c in KUBECTL_RETRIES]
    turns.append(CodexTurn(command=KUBECTL_RETRIES[0]))  # the sixth: denied before it runs
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        assert team.gateway is not None
        devops = team.agent("devops")
        task_id = f"rollout-{devops.rsplit('-', 1)[1]}"
        spec = TaskSpec(id=task_id, title="Roll out", checks=[ShellCheck(command="true")])
        await api.create_task(client, team.task_queue, spec)
        await api.claim_task(client, task_id, devops)
        # The repository has the infra folder one of the retries cds into.
        commit_file(team.repo, "infra/api.yaml", "kind: Deployment\n", "infra")
        install_runtime("codex", team.repo, devops, sys.executable, True, team.gateway.url)
        home = tmp_path / "codex-home"
        (home / ".codex").mkdir(parents=True)
        env = clean_environment(
            HOME=str(home),
            CODEX_HOME=str(home / ".codex"),
            OPENAI_API_KEY="sk-test-dummy",
            TETHER_AGENT_TOKEN=await team.gateway.token(devops),
            PATH=f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
        )
        with ResponsesApi(turns, last="I give up on the rollout.") as model:
            provider = [
                "-c", "model_provider=local",
                "-c", 'model_providers.local.name="local"',
                "-c", f'model_providers.local.base_url="{model.url}"',
                "-c", 'model_providers.local.wire_api="responses"',
                "-c", 'model_providers.local.env_key="OPENAI_API_KEY"',
                "-c", "shell_environment_policy.inherit=all",
            ]  # fmt: skip
            proc = await asyncio.create_subprocess_exec(
                str(codex),
                "exec",
                "--trust",  # the project's .codex/ (where Tether's hooks are) is loaded
                "--dangerously-bypass-hook-trust",
                "--dangerously-bypass-approvals-and-sandbox",
                "--skip-git-repo-check",
                *provider,
                "-m",
                "gpt-5-codex",
                "Roll out api 1.4.3 to prod.",
                cwd=team.repo,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
            said = (out + err).decode(errors="replace")

            view = await api.session_view(client, devops)
            assert view is not None and view.runtime == "codex", said[-2000:]
            hold = view.governor.hold
            assert hold is not None and hold.kind == "loop", said[-2000:]
            assert hold.reason.startswith("kubectl set failed 5 times the same way")
            # Five ran; the sixth was denied by the PreToolUse hook before it could run.
            assert ran.read_text().count("x") == 5, said[-2000:]
            shown = " ".join(o for n in range(len(model.requests)) for o in model.tool_outputs(n))
            assert "stopped by Tether: kubectl set failed 5 times" in shown, shown[-2000:]
            # The brief reached the model at the session's start.
            first = json.dumps(model.requests[0])
            assert f"Tether startup brief for {devops}" in first

        async def blocked() -> bool:
            record = await team.store.get_task(task_id)
            return record is not None and record.task.state == TaskState.BLOCKED

        await eventually(blocked, "the task to be blocked")
