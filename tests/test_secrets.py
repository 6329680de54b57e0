"""A check command cannot get a secret into stored evidence: not through its environment, not
through the worker's /proc, not encoded (base64, hex, reversed)."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.secrets import forms, redact
from activities.tasks import TaskActivities
from tether.config import TetherConfig
from tether.contracts import CheckEvidence, RunCheckInput, ShellCheck
from tether.store import Store


async def _run(store: Store, config: TetherConfig, command: str) -> CheckEvidence:
    activities = TaskActivities(store, config)
    inp = RunCheckInput(task_id="t", index=0, check=ShellCheck(command=command))
    return await ActivityEnvironment().run(activities.run_check, inp)


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[TetherConfig, str, str]:
    """A webhook URL in a variable whose name does not look secret, and a token in a file."""
    url = f"https://hooks.example.invalid/services/T0/B0/{uuid.uuid4().hex}"
    token = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("TEAM_CHAT_URL", url)
    token_file = tmp_path / "deploy-token"
    token_file.write_text(token + "\n")
    config = TetherConfig.model_validate(
        {
            "credentials": {
                "deploy": {
                    "kind": "http",
                    "file": str(token_file),
                    "probe_url": "http://127.0.0.1:9/",
                }
            },
            "notifications": {"webhook": {"env": "TEAM_CHAT_URL"}},
        }
    )
    return config, url, token


async def test_a_check_sees_no_configured_secret_in_its_environment(
    store: Store, secrets: tuple[TetherConfig, str, str]
) -> None:
    config, url, _ = secrets
    found = await _run(store, config, "env; echo done")
    assert found.passed and "done" in found.output_excerpt
    assert "TEAM_CHAT_URL" not in found.output_excerpt and url not in found.output_excerpt
    assert "PATH=" in found.output_excerpt  # the rest of the environment is there


async def test_a_check_cannot_read_the_worker_through_proc(
    store: Store, secrets: tuple[TetherConfig, str, str]
) -> None:
    config, url, _ = secrets
    worker = os.getpid()  # the activity runs in this process, as in the worker
    found = await _run(
        store, config, f"echo processes $(ls /proc | grep -c '^[0-9]'); cat /proc/{worker}/environ"
    )
    assert url not in found.output_excerpt and "TEAM_CHAT_URL" not in found.output_excerpt
    assert "No such file or directory" in found.output_excerpt
    # Its own PID namespace: a handful of processes, not the machine's.
    counted = found.output_excerpt.split("processes ", 1)[1].split()[0]
    assert int(counted) < 10, found.output_excerpt


async def test_encoded_secrets_are_redacted_from_evidence(
    store: Store, secrets: tuple[TetherConfig, str, str], tmp_path: Path
) -> None:
    config, _, token = secrets
    path = tmp_path / "deploy-token"
    command = (
        f"echo plain $(cat {path}); echo b64 $(base64 -w0 {path}); "
        f"echo hex $(od -An -tx1 {path} | tr -d ' \\n'); echo rev $(rev {path}); "
        f"echo embedded $(printf 'xy%s' $(cat {path}) | base64 -w0)"
    )
    found = await _run(store, config, command)
    text = found.output_excerpt
    assert token not in text and token[::-1] not in text and token.encode().hex() not in text
    assert base64.b64encode(token.encode()).decode()[:-4] not in text
    assert text.count("[credential deploy redacted]") >= 5, text


def test_every_form_of_a_secret_is_found_inside_larger_encodings() -> None:
    secret = "s3cr3t-value-" + uuid.uuid4().hex
    for prefix in ("", "a", "ab", "abc"):
        blob = (prefix + secret + "tail").encode()
        for encoded in (
            base64.b64encode(blob).decode(),
            base64.urlsafe_b64encode(blob).decode(),
            blob.hex(),
            blob.decode()[::-1],
        ):
            assert secret not in redact(encoded, {"x": secret})
            assert "[x redacted]" in redact(encoded, {"x": secret}), (prefix, encoded)
    assert all(len(f) >= 6 for f in forms(secret))


def test_the_password_of_a_secret_url_is_a_secret_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from activities.secrets import known_secrets

    monkeypatch.setenv(
        "DATABASE_URL", "postgresql://tether:pg-pass-1234@db:5432/tether?sslkey=k9x8y7z6"
    )
    found = known_secrets(None)
    assert found["DATABASE_URL password"] == "pg-pass-1234"
    assert found["DATABASE_URL sslkey"] == "k9x8y7z6"
    assert redact("the password is pg-pass-1234", found) == (
        "the password is [DATABASE_URL password redacted]"
    )
