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

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

from temporalio.client import Client

from tests.support.claude_code import npm_ci
from tests.support.helpers import FakeForge
from tests.support.payloads import forbidden_kubectl
from tests.support.responses_api import CodexTurn, ResponsesApi
from tests.support.rollout import COMMANDS, rollout, run_cli, stopped_at_the_fifth
from tests.support.runner import run_in_phase, set_runner
from tests.support.sessions import running_team
from tether import client as api
from tether.contracts import RunRequest

RUNTIME = Path(__file__).resolve().parent / "runtimes" / "codex"
CODEX = RUNTIME / "node_modules" / ".bin" / "codex"


def ensure_codex() -> Path:
    """The pinned Codex CLI, installed with `npm ci` from the committed lock when missing."""
    return CODEX if CODEX.exists() else npm_ci(RUNTIME, CODEX, "@openai/codex")


def codex_exec(codex: Path, model_url: str, prompt: str) -> list[str]:
    """`codex exec` headless against the scripted Responses API at `model_url`."""
    provider = [
        "-c", "model_provider=local",
        "-c", 'model_providers.local.name="local"',
        "-c", f'model_providers.local.base_url="{model_url}"',
        "-c", 'model_providers.local.wire_api="responses"',
        "-c", 'model_providers.local.env_key="OPENAI_API_KEY"',
        "-c", "shell_environment_policy.inherit=all",
    ]  # fmt: skip
    return [
        str(codex),
        "exec",
        "--trust",  # the project's .codex/ (where Tether's hooks are) is loaded
        "--dangerously-bypass-hook-trust",
        # Codex's own bubblewrap sandbox cannot nest in Tether's (no nested user namespaces);
        # where Tether runs it, Tether's sandbox is the wall.
        "--dangerously-bypass-approvals-and-sandbox",
        "--skip-git-repo-check",
        *provider,
        "-m",
        "gpt-5-codex",
        prompt,
    ]


async def test_the_real_codex_cli_is_stopped_at_the_fifth_identical_failure(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    codex = ensure_codex()
    turns = [CodexTurn(command=c, input_tokens=20_000) for c in COMMANDS]
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        home = tmp_path / "codex-home"
        (home / ".codex").mkdir(parents=True)
        job = await rollout(
            client,
            team,
            tmp_path,
            "codex",
            HOME=str(home),
            CODEX_HOME=str(home / ".codex"),
            OPENAI_API_KEY="sk-test-dummy",
        )
        with ResponsesApi(turns, last="I give up on the rollout.") as model:
            said = await run_cli(
                codex_exec(codex, model.url, "Roll out api 1.4.3 to prod."), team.repo, job.env
            )
            # What the model was shown: the brief first, the tools' outputs (and denials).
            await stopped_at_the_fifth(client, team, job, "codex", said, json.dumps(model.requests))


async def test_codex_run_by_tether_works_in_its_sandbox_and_its_calls_home_are_refused(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """Codex as `tether run` starts it (runtime "command", in the agent's worktree), in the
    agent's sandbox: it reaches its model API because tether.toml lists it for the agent, does
    its work there, and every other host it calls (its own telemetry and update checks) is
    refused and audited. (Its hooks do not govern a run Tether starts yet: `codex exec` takes no
    session id from the runner, with or without the sandbox; the loop verdict through Codex is
    the test above.)"""
    codex = ensure_codex()
    turns = [CodexTurn(command=c, input_tokens=20_000) for c in COMMANDS[:2]]
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        devops = team.agent("devops")
        agent_home = tmp_path / "tether-home" / "agents" / devops
        (agent_home / ".codex").mkdir(parents=True)
        ran = agent_home / "kubectl-ran"
        bin_dir = forbidden_kubectl(tmp_path / "bin")
        kubectl = bin_dir / "kubectl"
        kubectl.write_text(
            kubectl.read_text().replace("#!/bin/sh\n", f"#!/bin/sh\necho x >> {ran}\n")
        )
        with ResponsesApi(turns, last="I give up on the rollout.") as model:
            agent = next(a for a in team.config.agents if a.name == devops)
            model_host = urlsplit(model.url).netloc
            agent.network = [model_host]  # its model API, and nothing else
            set_runner(
                team,
                "devops",
                "command",
                command=codex_exec(codex, model.url, "{prompt}"),
                env={
                    "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
                    "CODEX_HOME": str(agent_home / ".codex"),
                    "OPENAI_API_KEY": "sk-test-dummy",
                },
            )
            request = RunRequest(prompt="Roll out api 1.4.3 to prod.")
            await api.run_agent(client, team.task_queue, devops, "command", request)
            view = await run_in_phase(client, devops, "finished", "Codex to finish", 150)
            asked = len(model.requests)
        assert view.run is not None and view.run.last is not None
        assert view.run.last.exit_code == 0, view.run.last.stderr_tail
        assert asked >= 2  # each command's output went back to its model
        assert ran.read_text().count("x") == 2  # its commands ran, in the sandbox
        refused = await team.store.egress_refusals(devops)
        assert refused, "Codex called no other host"
        assert all(f"{r['host']}:{r['port']}" != model_host for r in refused)
