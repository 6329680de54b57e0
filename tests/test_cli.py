"""The `tether` command as a user runs it: a real process against the real servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import TETHER, tether
from tests.support.helpers import HttpService


def task_file(tmp_path: Path, task_id: str, url: str) -> Path:
    path = tmp_path / f"{task_id}.toml"
    path.write_text(
        f'id = "{task_id}"\ntitle = "Checkout endpoint answers"\n'
        '[artifact]\nkind = "url"\n'
        f'url = "{url}"\n'
        "[[checks]]\n"
        'kind = "http"\nname = "checkout"\n'
        f'url = "{url}"\njson_field = "status"\njson_value = "ok"\n'
    )
    return path


async def test_done_means_done_end_to_end(
    cli_env: dict[str, str], tmp_path: Path, http_service: HttpService, task_id: str
) -> None:
    url = f"{http_service.url}/checkout"
    http_service.respond(500, {"status": "error", "detail": "database unreachable"})

    created = await tether(
        cli_env, "task", "create", "--file", str(task_file(tmp_path, task_id, url))
    )
    assert created.code == 0, created.err
    assert f"created task {task_id}" in created.out

    claim = await tether(cli_env, "task", "claim", task_id, "--agent", "coder")
    assert claim.code == 0 and "claimed by coder" in claim.out
    second = await tether(cli_env, "task", "claim", task_id, "--agent", "security")
    assert second.code == 3
    assert second.err.strip() == f"tether: task {task_id} is held by coder; pick another task"

    submit = await tether(cli_env, "task", "submit", task_id, "--agent", "coder", "--note", "done!")
    assert submit.code == 1
    assert "NOT DONE" in submit.out and "expected HTTP 200, got 500" in submit.out
    assert "database unreachable" in submit.out

    shown = await tether(cli_env, "task", "show", task_id, "--json")
    record = json.loads(shown.out)
    task = record["task"]
    assert task["state"] == "claimed" and task["assignee"] == "coder"
    assert task["spec"]["id"] == task_id and task["spec"]["title"] == "Checkout endpoint answers"
    assert task["spec"]["checks"][0]["url"] == url
    [evidence] = task["last_evidence"]
    assert evidence["passed"] is False and evidence["status_code"] == 500

    http_service.respond(200, {"status": "ok"})
    submit = await tether(cli_env, "task", "submit", task_id, "--agent", "coder")
    assert submit.code == 0 and "DONE" in submit.out

    listed = json.loads((await tether(cli_env, "task", "list", "--json", "--state", "done")).out)
    assert task_id in [t["spec"]["id"] for t in listed]
    human = await tether(cli_env, "task", "show", task_id)
    assert "state: done" in human.out and "verification_failed" in human.out


async def test_tasks_from_flags_and_founder_actions(
    cli_env: dict[str, str], http_service: HttpService, task_id: str
) -> None:
    created = await tether(
        cli_env,
        "task",
        "create",
        "--id",
        task_id,
        "--title",
        "Flags",
        "--assignee",
        "coder",
        "--kind",
        "bugfix",
        "--shell",
        "true",
        "--http",
        f"{http_service.url}/x",
        "--check",
        '{"kind": "http", "url": "http://127.0.0.1:1/y", "expect_status": 204}',
        "--artifact",
        "deploy:api",
    )
    assert created.code == 0, created.err
    other = await tether(cli_env, "task", "claim", task_id, "--agent", "marketing")
    assert other.code == 3 and "assigned to coder" in other.err
    blocked = await tether(cli_env, "task", "block", task_id, "--reason", "needs a design review")
    assert blocked.code == 0 and "now blocked" in blocked.out
    listed = json.loads((await tether(cli_env, "task", "list", "--json", "--state", "blocked")).out)
    assert [
        (t["hold_reason"], t["spec"]["kind"]) for t in listed if t["spec"]["id"] == task_id
    ] == [("needs a design review", "bugfix")]
    not_paused = await tether(cli_env, "resume", task_id)
    assert not_paused.code == 3 and "not paused; a blocked task is released with" in not_paused.err
    assert (await tether(cli_env, "task", "unblock", task_id)).code == 0
    assert (await tether(cli_env, "task", "cancel", task_id, "--reason", "dropped")).code == 0
    again = await tether(cli_env, "task", "cancel", task_id)
    assert again.code == 3 and f"task {task_id} is closed (completed)" in again.err
    ghost = await tether(cli_env, "task", "claim", "no-such-task", "--agent", "coder")
    assert ghost.code == 2 and "no open task 'no-such-task'" in ghost.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('id = "x1"\ntitle = "t"\n[[checks]]\nkind = "vibes"\n', "'vibes'"),
        ('id = "x1"\ntitle = "t"\n[[checks\n', "not valid TOML"),
        ('id = "X Y"\ntitle = "t"\n[[checks]]\nkind = "shell"\ncommand = "true"\n', "id"),
        (
            'id = "x1"\ntitle = "t"\n[[checks]]\nkind = "git"\n'
            'repository = "app"\nbranch = "main"\n',
            "not in tether.toml",
        ),
    ],
    ids=["unknown-kind", "malformed", "bad-id", "unknown-repository"],
)
async def test_bad_task_files_get_one_clear_error(
    cli_env: dict[str, str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    run = await tether(cli_env, "task", "create", "--file", str(path))
    assert run.code == 2 and message in run.err and run.out == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'id = "caf\xe9"\n', "is not UTF-8 text (byte 0xe9 at offset 9); save it as UTF-8"),
        (b"a = " + b"[" * 50_000 + b"]" * 50_000, "nests tables or arrays too deeply"),
        (b"# " + b"x" * (2 * 1024 * 1024), "is larger than 1024 KB"),
        (None, "is larger than 1024 KB"),  # /dev/zero: read no further than the limit
    ],
    ids=["not-utf8", "deep", "huge", "dev-zero"],
)
async def test_task_files_that_are_not_text_or_too_big_get_one_line(
    cli_env: dict[str, str], tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = Path("/dev/zero") if content is None else tmp_path / "bad.toml"
    if content is not None:
        path.write_bytes(content)
    run = await tether(cli_env, "task", "create", "--file", str(path))
    assert run.code == 2 and message in run.err and len(run.err.splitlines()) == 1


async def test_invalid_names_and_a_closed_pipe_get_no_traceback(cli_env: dict[str, str]) -> None:
    import asyncio
    import os

    run = await tether(cli_env, "task", "claim", "some-task", "--agent", "Coder Bot")
    assert run.code == 2 and run.err.splitlines() == [
        "tether: this command's input is not valid:",
        "  agent: must be a name of 1 to 64 lower-case letters, digits, '.', '_' or '-', "
        "starting with a letter or digit (got 'Coder Bot')",
    ]
    # A reader that left (`tether task list --json | head -1`): no BrokenPipeError traceback,
    # the exit status of a process ended by SIGPIPE.
    read, write = os.pipe()
    os.close(read)
    proc = await asyncio.create_subprocess_exec(
        *TETHER, "task", "list", "--json", env=cli_env, stdout=write, stderr=asyncio.subprocess.PIPE
    )
    os.close(write)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 141 and err.decode() == ""


async def test_unreachable_temporal_is_a_clear_error(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    run = await tether(env, "task", "claim", "nothing", "--agent", "coder")
    assert run.code == 2 and "cannot reach Temporal at 127.0.0.1:1" in run.err


async def test_init_writes_a_valid_config_and_refuses_to_overwrite(cli_env: dict[str, str]) -> None:
    first = await tether(cli_env, "init")
    assert first.code == 0
    home = Path(cli_env["TETHER_HOME"])
    assert (home / "tether.toml").exists() and (home / "example-task.toml").exists()
    second = await tether(cli_env, "init")
    assert second.code == 2 and "--force" in second.err


def test_library_logs_stay_out_of_the_founders_terminal_unless_asked_for() -> None:
    """`tether up` logs Tether's own lines; httpx's line per HTTP request only with --verbose."""
    import subprocess
    import sys

    script = (
        "import logging, sys\n"
        "from tether.ops.runtime import setup_logging\n"
        "setup_logging(verbose=sys.argv[1] == 'verbose')\n"
        "logging.getLogger('httpx').info('HTTP Request: POST http://127.0.0.1:1/x')\n"
        "logging.getLogger('tether.up').info('Tether is up.')\n"
    )
    for mode, shown in (("quiet", False), ("verbose", True)):
        done = subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True
        )
        assert "Tether is up." in done.stderr
        assert ("HTTP Request" in done.stderr) is shown, done.stderr


def test_temporal_cloud_is_reached_with_an_api_key_or_mtls_from_the_environment(
    tmp_path: Path,
) -> None:
    """The connect options Temporal Cloud needs, from the variables Temporal's CLI reads; a
    half-set mTLS pair or an unreadable file is a clear error, never a plain connection."""
    from temporalio.service import TLSConfig

    from tether.client.connection import cloud_options
    from tether.errors import TetherError

    assert cloud_options({}) == {}
    assert cloud_options({"TEMPORAL_API_KEY": "key-1"}) == {"api_key": "key-1", "tls": True}
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    mtls = cloud_options(
        {"TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert), "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key)}
    )
    assert isinstance(mtls["tls"], TLSConfig) and "api_key" not in mtls
    assert mtls["tls"].client_cert == b"CERT" and mtls["tls"].client_private_key == b"KEY"
    with pytest.raises(TetherError, match="needs both TEMPORAL_TLS_CLIENT_CERT_PATH"):
        cloud_options({"TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert)})
    with pytest.raises(TetherError, match="TEMPORAL_TLS_CLIENT_KEY_PATH=/nope"):
        cloud_options(
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert), "TEMPORAL_TLS_CLIENT_KEY_PATH": "/nope"}
        )
    with pytest.raises(TetherError, match="TEMPORAL_TLS is off"):
        cloud_options({"TEMPORAL_TLS": "false", "TEMPORAL_API_KEY": "key-1"})


def test_every_command_and_option_says_what_it_does() -> None:
    """`--help` at every level: each command and each option has its own line, and no two
    commands under one parent say the same thing (`reject` once repeated `approve`'s)."""
    import argparse

    from tether.cli.main import build_parser

    missing, repeated = [], []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = [c.help for c in action._choices_actions]
                repeated.extend(
                    f"{' '.join(path)}: {h}" for h in set(helps) if h and helps.count(h) > 1
                )
                said = {c.dest: c.help for c in action._choices_actions}
                for name, sub in action.choices.items():
                    if not said.get(name):
                        missing.append(" ".join([*path, name]))
                    walk(sub, [*path, name])
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{' '.join(path)} {action.option_strings or action.dest}")

    walk(build_parser(), ["tether"])
    assert not missing, missing
    assert not repeated, repeated
