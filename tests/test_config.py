"""tether.toml and task files: valid ones load, invalid ones say what is wrong and what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tether.cli.taskfile import EXAMPLE_TASK, check_against_config, load_task_file, spec_from_flags
from tether.config import EXAMPLE_CONFIG, Settings, TetherConfig, load_config
from tether.errors import TetherError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_config_and_task_are_valid(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "tether.toml", EXAMPLE_CONFIG))
    assert config.agents[0].name == "coder" and "app" in config.repositories
    spec = load_task_file(write(tmp_path, "task.toml", EXAMPLE_TASK))
    assert [c.kind for c in spec.checks] == ["http", "pytest", "git"]
    check_against_config(spec, config)


def test_invalid_config_names_field_value_and_expectation(tmp_path: Path) -> None:
    path = write(
        tmp_path, "tether.toml", '[[agents]]\nname = "Bad Name!"\n\n[thresholds]\nloop_limit = 1\n'
    )
    with pytest.raises(TetherError) as err:
        load_config(path)
    text = str(err.value)
    assert (
        "agents.0.name: must be a name of 1 to 64 lower-case letters" in text
        and "'Bad Name!'" in text
    )
    assert "thresholds.loop_limit" in text and "greater than or equal to 2" in text


def test_config_refuses_inline_secret_and_dangling_references(tmp_path: Path) -> None:
    path = write(tmp_path, "a.toml", '[credentials.gh]\ntoken = "ghp_abc"\n')
    with pytest.raises(TetherError, match=r"would put a secret in tether\.toml"):
        load_config(path)
    path = write(tmp_path, "b.toml", '[[agents]]\nname = "coder"\ncredentials = ["github"]\n')
    with pytest.raises(TetherError, match="credential 'github', which is not defined"):
        load_config(path)
    path = write(tmp_path, "c.toml", "[thresholds]\ncontext_compact = 0.9\ncontext_trim = 0.8\n")
    with pytest.raises(TetherError, match="compact < trim < handoff"):
        load_config(path)


def test_unknown_field_and_malformed_toml(tmp_path: Path) -> None:
    with pytest.raises(TetherError, match=r"agent: unknown field"):
        load_config(write(tmp_path, "a.toml", 'agent = "typo"\n'))
    with pytest.raises(TetherError, match="not valid TOML"):
        load_config(write(tmp_path, "b.toml", "[[agents]\n"))
    with pytest.raises(TetherError, match="does not exist; `tether init`"):
        load_config(tmp_path / "missing.toml")


def test_task_file_errors(tmp_path: Path) -> None:
    bad_kind = 'id = "t1"\ntitle = "x"\n[[checks]]\nkind = "telepathy"\n'
    with pytest.raises(TetherError) as err:
        load_task_file(write(tmp_path, "k.toml", bad_kind))
    assert "checks.0" in str(err.value) and "'telepathy'" in str(err.value)
    assert "'http', 'shell', 'pytest', 'git'" in str(err.value)

    no_checks = 'id = "t1"\ntitle = "x"\nchecks = []\n'
    with pytest.raises(TetherError, match="at least one check"):
        load_task_file(write(tmp_path, "n.toml", no_checks))

    bad_url = 'id = "t1"\ntitle = "x"\n[[checks]]\nkind = "http"\nurl = "localhost:80"\n'
    with pytest.raises(TetherError, match=r"checks.0.http.url: .*http:// or https://"):
        load_task_file(write(tmp_path, "u.toml", bad_url))

    bad_regex = (
        'id = "t1"\ntitle = "x"\n[[checks]]\nkind = "shell"\ncommand = "true"\n'
        'stdout_pattern = "("\n'
    )
    with pytest.raises(TetherError, match="not a valid regular expression"):
        load_task_file(write(tmp_path, "r.toml", bad_regex))

    with pytest.raises(TetherError, match="cannot read task file"):
        load_task_file(tmp_path / "absent.toml")


def test_git_check_must_name_a_configured_repository() -> None:
    spec = spec_from_flags(
        "t1",
        "x",
        "",
        None,
        None,
        [{"kind": "git", "repository": "ghost", "branch": "main"}],
    )
    with pytest.raises(TetherError, match=r"repository 'ghost', which is not in tether\.toml"):
        check_against_config(spec, TetherConfig())


def test_settings_from_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "TETHER_HOME": str(tmp_path),
            "TEMPORAL_ADDRESS": "temporal:7233",
            "TETHER_TASK_QUEUE": "q",
            "TETHER_POSTGRES_PORT": "6000",
        }
    )
    assert settings.home == tmp_path and settings.temporal_address == "temporal:7233"
    assert settings.task_queue == "q" and settings.postgres_port == 6000
    with pytest.raises(TetherError, match="not a port number"):
        Settings.from_env({"TETHER_HOME": str(tmp_path), "TETHER_UI_PORT": "http"})


def test_worker_memory_and_sandbox_settings(tmp_path: Path) -> None:
    """A worker keeps a bounded number of workflows in memory, and runs without Temporal's
    sandbox unless asked (the suite asks: every test runs its workflows in it)."""
    default = Settings.from_env({"TETHER_HOME": str(tmp_path)})
    assert default.workflow_cache == 200 and default.workflow_sandbox is False
    asked = Settings.from_env(
        {"TETHER_WORKFLOW_CACHE": "50", "TETHER_WORKFLOW_SANDBOX": "on", "TETHER_HOME": "/h"}
    )
    assert asked.workflow_cache == 50 and asked.workflow_sandbox is True
    with pytest.raises(TetherError, match=r"TETHER_WORKFLOW_CACHE='0' is not a count"):
        Settings.from_env({"TETHER_WORKFLOW_CACHE": "0"})
    with pytest.raises(TetherError, match=r"'maybe' is not a switch; expected on or off"):
        Settings.from_env({"TETHER_WORKFLOW_SANDBOX": "maybe"})
    assert Settings.from_env(dict(os.environ)).workflow_sandbox, "the suite runs sandboxed"


def test_retry_windows_are_bounded(tmp_path: Path) -> None:
    text = (
        'id = "t1"\ntitle = "x"\n[[checks]]\nkind = "http"\nurl = "http://127.0.0.1:1/"\n'
        "retry_for_seconds = 86400\nretry_interval_seconds = 1\n"
    )
    with pytest.raises(TetherError, match=r"allows 86400 attempts, more than 120"):
        load_task_file(write(tmp_path, "w.toml", text))


def test_telemetry_settings_are_checked_with_a_way_out() -> None:
    settings = Settings.from_env(
        {"TETHER_OTEL_EXPORTER": "otlp", "TETHER_METRICS_BIND": "127.0.0.1:9464"}
    )
    assert settings.otel_exporter == "otlp" and settings.metrics_bind == "127.0.0.1:9464"
    assert Settings.from_env({"TETHER_OTEL_EXPORTER": "none"}).otel_exporter is None
    with pytest.raises(TetherError, match="expected 'console', 'otlp'"):
        Settings.from_env({"TETHER_OTEL_EXPORTER": "jaeger"})
    with pytest.raises(TetherError, match=r"not host:port; e\.g\. 127\.0\.0\.1:9464"):
        Settings.from_env({"TETHER_METRICS_BIND": "9464"})
