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
from pathlib import Path

from temporalio.client import Client

from tests.support.claude_code import npm_ci
from tests.support.helpers import FakeForge
from tests.support.responses_api import CodexTurn, ResponsesApi
from tests.support.rollout import COMMANDS, rollout, run_cli, stopped_at_the_fifth
from tests.support.sessions import running_team

RUNTIME = Path(__file__).resolve().parent / "runtimes" / "codex"
CODEX = RUNTIME / "node_modules" / ".bin" / "codex"


def ensure_codex() -> Path:
    """The pinned Codex CLI, installed with `npm ci` from the committed lock when missing."""
    return CODEX if CODEX.exists() else npm_ci(RUNTIME, CODEX, "@openai/codex")


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
            provider = [
                "-c", "model_provider=local",
                "-c", 'model_providers.local.name="local"',
                "-c", f'model_providers.local.base_url="{model.url}"',
                "-c", 'model_providers.local.wire_api="responses"',
                "-c", 'model_providers.local.env_key="OPENAI_API_KEY"',
                "-c", "shell_environment_policy.inherit=all",
            ]  # fmt: skip
            said = await run_cli(
                [
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
                ],
                team.repo,
                job.env,
            )
            # What the model was shown: the brief first, the tools' outputs (and denials).
            await stopped_at_the_fifth(client, team, job, "codex", said, json.dumps(model.requests))
