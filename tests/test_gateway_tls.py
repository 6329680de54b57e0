"""The gateway over TLS, for agents on other hosts of a cluster (issue 28): given a certificate
and key it serves https only; the hook command and an agent Tether runs in its sandbox reach it
over https, verifying it by the certificate they are given; a client that does not know the
certificate, or speaks plain HTTP, gets nothing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from tests.support.helpers import FakeForge
from tests.support.runner import run_in_phase, set_runner
from tests.support.sessions import run_hook, running_team
from tests.support.tls import self_signed
from tether import client as api
from tether.config import Settings
from tether.contracts import RunRequest, ShellCheck, TaskSpec
from tether.errors import TetherError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key (PEM files)."""
    return self_signed(tmp_path)


async def test_hooks_and_a_sandboxed_agent_reach_a_tls_gateway_by_its_certificate(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    certificate: tuple[Path, Path],
) -> None:
    cert, _ = certificate
    async with running_team(client, fresh_db, tmp_path, forge, tls=certificate) as team:
        assert team.gateway is not None and team.gateway.url.startswith("https://127.0.0.1:")
        coder = team.agent("coder")

        # The hook command, verifying the gateway by its certificate.
        start = await run_hook(
            "SessionStart",
            coder,
            {"session_id": "cc-1"},
            team,
            env={"TETHER_GATEWAY_CA": str(cert)},
        )
        assert start.code == 0, start.err
        view = await api.session_view(client, coder)
        assert view is not None and view.external_id == "cc-1"
        # Not knowing the certificate, or speaking plain HTTP to it: nothing gets through.
        pre = {"session_id": "cc-1", "tool_name": "Bash", "tool_input": {"command": "ls"}}
        for gateway in (team.gateway, team.gateway.url.replace("https://", "http://")):
            refused = await run_hook("PreToolUse", coder, pre, gateway, "--fail-closed")
            assert refused.answer is not None
            reason = refused.answer["hookSpecificOutput"]["permissionDecisionReason"]
            assert "unreachable" in reason.lower() or "did not answer" in reason, reason
        assert (await api.session_view(client, coder)).governor.reports == 0  # type: ignore[union-attr]

        # An agent Tether runs, in its sandbox, claims a task over https through the gateway.
        await api.end_session(client, coder, "switching to the runner", "founder")
        task_id = f"tls-{coder.rsplit('-', 1)[1]}"
        await api.create_task(
            client,
            team.task_queue,
            TaskSpec(id=task_id, title="TLS", checks=[ShellCheck(command="true")]),
        )
        program = tmp_path / "claim.py"
        program.write_text(
            "import os, subprocess, sys\n"
            "done = subprocess.run([sys.executable, '-m', 'tether', 'task', 'claim', sys.argv[1],\n"
            "                       '--agent', os.environ['TETHER_AGENT']], capture_output=True)\n"
            "sys.stderr.write(done.stderr.decode())\n"
            "sys.exit(done.returncode)\n"
        )
        set_runner(
            team,
            "coder",
            "command",
            command=[sys.executable, str(program), task_id],
            env={"PYTHONPATH": str(ROOT)},
        )
        await api.run_agent(client, team.task_queue, coder, "command", RunRequest(prompt="go"))
        view = await run_in_phase(client, coder, "finished", "the agent to finish", 120)
        assert view.run is not None and view.run.last is not None
        assert view.run.last.exit_code == 0, view.run.last.stderr_tail
        record = await team.store.get_task(task_id)
        assert record is not None and record.task.assignee == coder


def test_tls_needs_both_the_certificate_and_the_key(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"TETHER_HOME": str(tmp_path), "TETHER_GATEWAY_TLS_CERT": str(tmp_path / "c.pem")}
    )
    with pytest.raises(TetherError, match="needs both TETHER_GATEWAY_TLS_CERT and"):
        _ = settings.gateway_tls
    both: dict[str, Any] = {
        "TETHER_HOME": str(tmp_path),
        "TETHER_GATEWAY_TLS_CERT": "/c.pem",
        "TETHER_GATEWAY_TLS_KEY": "/k.pem",
        "TETHER_GATEWAY_BIND": "0.0.0.0:8787",
    }
    settings = Settings.from_env(both)
    assert settings.gateway_address == "https://127.0.0.1:8787"
    assert settings.gateway_trust == Path("/c.pem")
    with_ca = Settings.from_env({**both, "TETHER_GATEWAY_TLS_CA": "/ca.pem"})
    assert with_ca.gateway_trust == Path("/ca.pem")
