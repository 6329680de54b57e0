"""Each check kind as an activity (ActivityEnvironment), against real processes, repos and HTTP."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.checks import count_tests
from activities.tasks import TaskActivities
from tests.support.helpers import HttpService, commit_file, git, make_repo
from tether.config import Repository, TetherConfig
from tether.contracts import (
    Check,
    CheckEvidence,
    GitCheck,
    HttpCheck,
    PytestCheck,
    RunCheckInput,
    ShellCheck,
)
from tether.store import Store


async def run(
    check: Check,
    store: Store,
    config: TetherConfig | None = None,
    created_at: datetime | None = None,
) -> CheckEvidence:
    activities = TaskActivities(store, config or TetherConfig())
    inp = RunCheckInput(task_id="t", index=0, check=check, task_created_at=created_at)
    return await ActivityEnvironment().run(activities.run_check, inp)


async def test_http_json_field_and_body(store: Store, http_service: HttpService) -> None:
    http_service.respond(200, {"data": {"items": [{"version": "1.2.3"}]}, "status": "ok"})
    url = f"{http_service.url}/health"
    ok = await run(HttpCheck(url=url, json_field="data.items.0.version", json_value="1.2.3"), store)
    assert ok.passed and ok.status_code == 200
    wrong = await run(
        HttpCheck(url=url, json_field="data.items.0.version", json_value="2.0"), store
    )
    assert not wrong.passed and "is '1.2.3', expected '2.0'" in wrong.summary
    missing = await run(HttpCheck(url=url, json_field="data.nope"), store)
    assert not missing.passed and "missing" in missing.summary
    body = await run(HttpCheck(url=url, body_contains="degraded"), store)
    assert not body.passed and "does not contain 'degraded'" in body.summary
    http_service.respond(200, b"<html>not json</html>")
    not_json = await run(HttpCheck(url=url, json_field="status"), store)
    assert not not_json.passed and "not JSON" in not_json.summary


async def test_shell_exit_code_pattern_and_missing_folder(store: Store, tmp_path: Path) -> None:
    ok = await run(ShellCheck(command="echo version=42", stdout_pattern=r"version=\d+"), store)
    assert ok.passed and ok.exit_code == 0 and "version=42" in ok.output_excerpt
    nomatch = await run(ShellCheck(command="echo nothing", stdout_pattern="version"), store)
    assert not nomatch.passed and "does not match" in nomatch.summary
    expected_fail = await run(ShellCheck(command="exit 4", expect_exit=4), store)
    assert expected_fail.passed
    in_folder = await run(ShellCheck(command="pwd", cwd=str(tmp_path)), store)
    assert str(tmp_path) in in_folder.output_excerpt
    gone = await run(ShellCheck(command="true", cwd=str(tmp_path / "gone")), store)
    assert not gone.passed and "does not exist" in gone.summary


async def test_timeout_kills_the_whole_process_group(store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    # The grandchild would write the marker after 3 s if the timeout only killed the shell.
    check = ShellCheck(command=f"(sleep 3; touch {marker}) & sleep 60", timeout_seconds=1)
    evidence = await run(check, store)
    assert not evidence.passed and "timed out" in evidence.summary
    await asyncio.sleep(3.5)
    assert not marker.exists()


def _write_project(root: Path, failing: int) -> None:
    lines = ["def test_a():\n    assert True\n", "def test_b():\n    assert True\n"]
    lines += [f"def test_bad_{i}():\n    assert False\n" for i in range(failing)]
    (root / "test_sample.py").write_text("\n".join(lines))


async def test_pytest_check_counts_results(store: Store, tmp_path: Path) -> None:
    _write_project(tmp_path, failing=1)
    cmd = f"{sys.executable} -m pytest -q -p no:cacheprovider test_sample.py"
    failing = await run(PytestCheck(command=cmd, cwd=str(tmp_path)), store)
    assert not failing.passed
    assert (failing.tests_passed, failing.tests_failed) == (2, 1)
    _write_project(tmp_path, failing=0)
    passing = await run(PytestCheck(command=cmd, cwd=str(tmp_path)), store)
    assert passing.passed and passing.tests_passed == 2 and passing.tests_failed == 0
    too_few = await run(PytestCheck(command=cmd, cwd=str(tmp_path), min_passed=5), store)
    assert not too_few.passed and "at least 5" in too_few.summary


async def test_pytest_check_with_no_tests_fails(store: Store, tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text("")
    cmd = f"{sys.executable} -m pytest -q -p no:cacheprovider test_empty.py"
    evidence = await run(PytestCheck(command=cmd, cwd=str(tmp_path)), store)
    assert not evidence.passed and evidence.tests_passed == 0


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        ("===== 3 passed, 1 failed, 2 errors in 0.1s =====", (3, 3)),
        ("12 passed in 1.0s", (12, 0)),
        ("no summary", (0, 0)),
        ("5 passed, 0 failed", (5, 0)),
    ],
)
def test_count_tests(text: str, counts: tuple[int, int]) -> None:
    assert count_tests("some output\n" + text) == counts


async def test_git_branch_commit_touching_path(store: Store, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app")
    config = TetherConfig(repositories={"app": Repository(path=str(repo))})
    created = datetime.now(UTC) - timedelta(seconds=5)
    check = GitCheck(repository="app", branch="main", path="api/health.py")

    old = "2020-01-01T00:00:00+00:00"
    commit_file(repo, "api/health.py", "v0", "old work", date=old)
    before = await run(check, store, config, created_at=created)
    assert not before.passed and "since the task was created" in before.summary

    commit_file(repo, "docs/notes.md", "unrelated", "docs")
    elsewhere = await run(check, store, config, created_at=created)
    assert not elsewhere.passed and "touching 'api/health.py'" in elsewhere.summary

    sha = commit_file(repo, "api/health.py", "v1", "add health endpoint")
    done = await run(check, store, config, created_at=created)
    assert done.passed and done.commit == sha and "add health endpoint" in done.summary

    other_branch = await run(GitCheck(repository="app", branch="feature"), store, config)
    assert not other_branch.passed and "does not exist" in other_branch.summary


async def test_git_tag_points_at_commit(store: Store, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app")
    config = TetherConfig(repositories={"app": Repository(path=str(repo))})
    first = git(repo, "rev-parse", "HEAD")
    second = commit_file(repo, "x.txt", "x", "second")
    git(repo, "tag", "-a", "v1.0", "-m", "release", first)
    ok = await run(GitCheck(repository="app", tag="v1.0", commit=first[:10]), store, config)
    assert ok.passed and ok.commit == first
    wrong = await run(GitCheck(repository="app", tag="v1.0", commit=second), store, config)
    assert not wrong.passed and "not at" in wrong.summary
    missing = await run(GitCheck(repository="app", tag="v2.0"), store, config)
    assert not missing.passed and "does not exist" in missing.summary


async def test_git_unknown_repository_is_a_failed_check(store: Store) -> None:
    evidence = await run(GitCheck(repository="nope", branch="main"), store)
    assert not evidence.passed and "not configured" in evidence.summary


async def test_check_commands_get_no_worker_secrets_and_evidence_redacts_them(
    store: Store, monkeypatch: pytest.MonkeyPatch, http_service: HttpService
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-very-secret-123")
    monkeypatch.setenv("DATABASE_URL", "postgresql://tether:hunter22@db/tether")
    monkeypatch.setenv("HARMLESS_SETTING", "visible-value")
    env = await run(ShellCheck(command="env"), store)
    assert "visible-value" in env.output_excerpt
    assert "tok-very-secret-123" not in env.output_excerpt
    assert "hunter22" not in env.output_excerpt and "DATABASE_URL" not in env.output_excerpt

    # A secret that reaches the output another way (a file, a service echoing it) is redacted.
    leaked = await run(ShellCheck(command="echo tok-very-secret-123; exit 1"), store)
    assert "tok-very-secret-123" not in leaked.output_excerpt
    assert "[DEPLOY_TOKEN redacted]" in leaked.output_excerpt
    http_service.respond(500, {"echo": "tok-very-secret-123"})
    echoed = await run(HttpCheck(url=f"{http_service.url}/x"), store)
    assert "tok-very-secret-123" not in echoed.output_excerpt
