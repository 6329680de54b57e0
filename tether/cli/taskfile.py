"""Task definitions from a TOML file or from command-line flags, validated into a TaskSpec."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tether.config import TetherConfig, describe_validation_error
from tether.contracts import GitCheck, TaskSpec
from tether.errors import TetherError

EXAMPLE_TASK = """\
# A task: what must be true when it is done, checked by Tether, not by the agent.
id = "health-endpoint"
title = "The API answers /health"
description = "Add a /health endpoint that reports the build version."
assignee = "coder"          # optional: only this agent may claim it
kind = "feature"            # optional: its cost is compared with completed tasks of this kind

[artifact]                   # what will exist when the work is done
kind = "commit"              # commit | file | url | deploy
repository = "app"
branch = "main"
path = "api/health.py"

[[checks]]
kind = "http"                # http | shell | pytest | git
url = "http://127.0.0.1:8000/health"
expect_status = 200
json_field = "status"
json_value = "ok"
retry_for_seconds = 300      # keep trying for 5 minutes while a deploy rolls out

[[checks]]
kind = "pytest"
command = "python -m pytest -q tests/test_health.py"
cwd = "~/src/app"

[[checks]]
kind = "git"
repository = "app"
branch = "main"
path = "api/health.py"
"""


def _validate(data: dict[str, Any], source: str) -> TaskSpec:
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise TetherError(describe_validation_error(exc, source)) from exc


# A task file is a few KB of TOML; more than this is a mistake (or /dev/zero).
MAX_TASK_FILE = 1024 * 1024


def load_task_file(path: Path) -> TaskSpec:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_TASK_FILE + 1)
    except OSError as exc:
        raise TetherError(f"cannot read task file {path}: {exc.strerror}") from exc
    if len(raw) > MAX_TASK_FILE:
        raise TetherError(
            f"task file {path} is larger than {MAX_TASK_FILE // 1024} KB; a task is a few lines "
            "of TOML (see `tether init`)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TetherError(
            f"task file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TetherError(f"task file {path} is not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise TetherError(f"task file {path} nests tables or arrays too deeply") from exc
    return _validate(data, f"task file {path}")


def _split(value: str, flag: str, parts: int, shape: str) -> list[str]:
    pieces = value.split(":", parts - 1)
    if not all(pieces[: 2 if parts > 1 else 1]):
        raise TetherError(f"{flag} {value!r}: expected {shape}")
    return pieces + [""] * (parts - len(pieces))


def checks_from_flags(
    http: list[str],
    shell: list[str],
    pytest: list[str],
    git_commit: list[str],
    git_tag: list[str],
    raw: list[str],
) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    checks += [{"kind": "http", "url": url} for url in http]
    checks += [{"kind": "shell", "command": cmd} for cmd in shell]
    checks += [{"kind": "pytest", "command": cmd} for cmd in pytest]
    for value in git_commit:
        repo, branch, path = _split(value, "--git-commit", 3, "REPO:BRANCH[:PATH]")
        checks.append({"kind": "git", "repository": repo, "branch": branch, "path": path or None})
    for value in git_tag:
        repo, tag, commit = _split(value, "--git-tag", 3, "REPO:TAG[:COMMIT]")
        checks.append({"kind": "git", "repository": repo, "tag": tag, "commit": commit or None})
    for value in raw:
        try:
            check = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TetherError(f"--check {value!r} is not JSON: {exc.msg}") from exc
        if not isinstance(check, dict):
            raise TetherError(f"--check {value!r}: expected a JSON object with a 'kind'")
        checks.append(check)
    return checks


def artifact_from_flag(value: str) -> dict[str, Any]:
    """`url:URL`, `file:PATH`, `deploy:SERVICE`, or `commit:REPO[@BRANCH][:PATH]`."""
    kind, _, rest = value.partition(":")
    if not rest:
        raise TetherError(
            f"--artifact {value!r}: expected url:URL, file:PATH, deploy:SERVICE or "
            "commit:REPO[@BRANCH][:PATH]"
        )
    if kind == "url":
        return {"kind": "url", "url": rest}
    if kind == "file":
        return {"kind": "file", "path": rest}
    if kind == "deploy":
        return {"kind": "deploy", "service": rest}
    if kind == "commit":
        repo_branch, _, path = rest.partition(":")
        repo, _, branch = repo_branch.partition("@")
        return {
            "kind": "commit",
            "repository": repo,
            "branch": branch or None,
            "path": path or None,
        }
    raise TetherError(f"--artifact kind {kind!r} is unknown; expected url, file, deploy or commit")


def spec_from_flags(
    task_id: str | None,
    title: str | None,
    description: str,
    assignee: str | None,
    artifact: str | None,
    checks: list[dict[str, Any]],
    kind: str | None = None,
) -> TaskSpec:
    if not task_id or not title:
        raise TetherError("a task needs --id and --title (or --file TASK.toml)")
    data: dict[str, Any] = {
        "id": task_id,
        "title": title,
        "description": description,
        "checks": checks,
    }
    if assignee:
        data["assignee"] = assignee
    if kind:
        data["kind"] = kind
    if artifact:
        data["artifact"] = artifact_from_flag(artifact)
    return _validate(data, "the task")


def check_against_config(spec: TaskSpec, config: TetherConfig) -> None:
    """Refuse, at creation, checks that name repositories the worker would not know."""
    for i, check in enumerate(spec.checks):
        if isinstance(check, GitCheck) and check.repository not in config.repositories:
            known = ", ".join(sorted(config.repositories)) or "none configured"
            raise TetherError(
                f"check {check.label(i)} names repository {check.repository!r}, which is not in "
                f"tether.toml (known: {known}); add it under [repositories]"
            )
