"""The real Gemini CLI (npm `@google/gemini-cli`, pinned in tests/runtimes/gemini), headless
(`gemini -p --yolo`) and offline against a scripted Gemini API on 127.0.0.1
(GOOGLE_GEMINI_BASE_URL), governed by the hooks `tether hooks install --runtime gemini` writes:
the brief at the session's start, the loop stopped at the fifth identical failure (read from
the `Exit Code: N` Gemini puts in a shell result), the sixth command denied before it runs, and
the task blocked: the same verdict as through Claude Code."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from tests.support.claude_code import npm_ci
from tests.support.gemini_api import GeminiApi
from tests.support.helpers import FakeForge
from tests.support.rollout import COMMANDS, rollout, run_cli, stopped_at_the_fifth
from tests.support.sessions import running_team

RUNTIME = Path(__file__).resolve().parent / "runtimes" / "gemini"
GEMINI = RUNTIME / "node_modules" / ".bin" / "gemini"


def ensure_gemini() -> Path:
    return GEMINI if GEMINI.exists() else npm_ci(RUNTIME, GEMINI, "@google/gemini-cli")


async def test_the_real_gemini_cli_is_stopped_at_the_fifth_identical_failure(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    gemini = ensure_gemini()
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        home = tmp_path / "gemini-home"
        (home / ".gemini").mkdir(parents=True)
        (home / ".gemini" / "settings.json").write_text(
            '{"security": {"auth": {"selectedType": "gemini-api-key"}}}\n'
        )
        with GeminiApi(COMMANDS, last="I give up on the rollout.") as model:
            job = await rollout(
                client,
                team,
                tmp_path,
                "gemini",
                HOME=str(home),
                GEMINI_API_KEY="test-dummy",
                GOOGLE_GEMINI_BASE_URL=model.url,
                # Headless in a folder nobody trusted interactively (its hooks run only then).
                GEMINI_CLI_TRUST_WORKSPACE="true",
            )
            argv = [str(gemini), "-p", "Roll out api 1.4.3 to prod.", "--yolo"]
            said = await run_cli([*argv, "-m", "gemini-2.5-pro"], team.repo, job.env)
            await stopped_at_the_fifth(client, team, job, "gemini", said, model.shown())
            # Its last answer without the deliverable was refused (AfterAgent): the reason came
            # back to the model as the next prompt.
            assert "No deliverable yet" in model.shown()
