"""Verification checks: run by the worker, never by the agent, and always answered with evidence.

A check that cannot run (unreachable URL, hanging command, missing folder) is a failed check with
evidence saying why, not an exception: the task goes back to its assignee instead of a workflow
retrying forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from activities.secrets import check_environment, isolated, known_secrets, redact
from tether.config import TetherConfig
from tether.constants import EVIDENCE_EXCERPT_BYTES
from tether.contracts import (
    CheckEvidence,
    GitCheck,
    HttpCheck,
    PytestCheck,
    RunCheckInput,
    ShellCheck,
)

Heartbeat = Callable[[], None]

# Bytes of output kept for pattern matching; anything beyond is counted, not kept.
MATCH_WINDOW_BYTES = 1 << 20
HEARTBEAT_EVERY_SECONDS = 5.0


class Capture:
    """Keeps the head (for matching) and the tail (for the excerpt) of a stream of any size."""

    def __init__(self, keep: int = MATCH_WINDOW_BYTES, tail: int = EVIDENCE_EXCERPT_BYTES) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self._keep = keep
        self._tail_size = tail

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._keep - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.tail += chunk
        if len(self.tail) > self._tail_size:
            del self.tail[: len(self.tail) - self._tail_size]

    @property
    def complete(self) -> bool:
        return self.total <= len(self.head)

    def searchable(self) -> str:
        if self.complete:
            return self.head.decode(errors="replace")
        return (self.head + b"\n" + self.tail).decode(errors="replace")

    def excerpt(self, budget: int) -> str:
        """The start and the end of the output within `budget` bytes; the middle is elided."""
        if self.total <= budget:
            return self.head.decode(errors="replace")
        half = budget // 2
        start = self.head[:half].decode(errors="replace")
        end = self.tail[-half:].decode(errors="replace")
        return f"{start}\n… [{self.total - 2 * half} bytes elided] …\n{end}"


@dataclass
class ProcessOutcome:
    exit_code: int | None
    stdout: Capture = field(default_factory=Capture)
    stderr: Capture = field(default_factory=Capture)
    timed_out: bool = False
    error: str | None = None

    def excerpt(self) -> str:
        parts = []
        budget = EVIDENCE_EXCERPT_BYTES // 2
        if self.stdout.total:
            parts.append("stdout:\n" + self.stdout.excerpt(budget))
        if self.stderr.total:
            parts.append("stderr:\n" + self.stderr.excerpt(budget))
        return "\n".join(parts)

    @property
    def output_bytes(self) -> int:
        return self.stdout.total + self.stderr.total


async def _pump(stream: asyncio.StreamReader | None, capture: Capture) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        capture.feed(chunk)


async def run_process(
    argv: Sequence[str] | str,
    *,
    cwd: str | None,
    time_limit: float,
    heartbeat: Heartbeat | None = None,
    environment: dict[str, str] | None = None,
) -> ProcessOutcome:
    """Run a command (argv, or a shell string) with a hard timeout and bounded output capture.

    The command gets its own process group so that a timeout kills everything it started. It
    runs with `environment`, by default the worker's without its secrets.
    """
    if cwd is not None and not os.path.isdir(cwd):
        return ProcessOutcome(exit_code=None, error=f"working folder {cwd} does not exist")
    kwargs: dict[str, Any] = {
        "cwd": cwd,
        "stdin": asyncio.subprocess.DEVNULL,
        "stdout": asyncio.subprocess.PIPE,
        "stderr": asyncio.subprocess.PIPE,
        "start_new_session": True,
        "env": check_environment() if environment is None else environment,
    }
    try:
        if isinstance(argv, str):
            proc = await asyncio.create_subprocess_shell(argv, **kwargs)
        else:
            proc = await asyncio.create_subprocess_exec(*argv, **kwargs)
    except OSError as exc:
        return ProcessOutcome(exit_code=None, error=f"could not start: {exc}")

    outcome = ProcessOutcome(exit_code=None)
    pumps = asyncio.gather(_pump(proc.stdout, outcome.stdout), _pump(proc.stderr, outcome.stderr))
    deadline = time.monotonic() + time_limit
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                outcome.timed_out = True
                break
            try:
                await asyncio.wait_for(
                    asyncio.shield(proc.wait()), min(left, HEARTBEAT_EVERY_SECONDS)
                )
                break
            except TimeoutError:
                if heartbeat:
                    heartbeat()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    # A grandchild that keeps the pipes open must not hold the check past its timeout.
    try:
        await asyncio.wait_for(pumps, timeout=5)
    except TimeoutError:
        pumps.cancel()
    outcome.exit_code = proc.returncode
    return outcome


@dataclass
class Verdict:
    """What a check found; run_check adds the timing and identity to make it evidence."""

    passed: bool
    summary: str
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def _failed(summary: str, **fields: Any) -> Verdict:
    return Verdict(False, summary, fields=fields)


def _process_fields(out: ProcessOutcome) -> dict[str, Any]:
    return {
        "exit_code": out.exit_code,
        "output_excerpt": out.excerpt(),
        "output_bytes": out.output_bytes,
    }


def _did_not_finish(out: ProcessOutcome, limit: float, fields: dict[str, Any]) -> Verdict | None:
    if out.error:
        return Verdict(False, out.error, error=out.error, fields=fields)
    if out.timed_out:
        msg = f"timed out after {limit:g}s and was killed"
        return Verdict(False, msg, error=msg, fields=fields)
    return None


async def _run_command(
    check: ShellCheck | PytestCheck, config: TetherConfig | None, heartbeat: Heartbeat | None
) -> ProcessOutcome:
    """A check's command as checks run: isolated, with no secret in its environment."""
    return await run_process(
        isolated(check.command),
        cwd=check.cwd,
        time_limit=check.timeout_seconds,
        heartbeat=heartbeat,
        environment=check_environment(config),
    )


async def run_shell(
    check: ShellCheck, config: TetherConfig | None, heartbeat: Heartbeat | None
) -> Verdict:
    limit = check.timeout_seconds
    out = await _run_command(check, config, heartbeat)
    fields = _process_fields(out)
    if unfinished := _did_not_finish(out, limit, fields):
        return unfinished
    if out.exit_code != check.expect_exit:
        return _failed(f"expected exit code {check.expect_exit}, got {out.exit_code}", **fields)
    pattern = check.stdout_pattern
    if pattern and not re.search(pattern, out.stdout.searchable(), re.MULTILINE):
        return _failed(f"stdout does not match /{pattern}/", **fields)
    return Verdict(True, f"exit code {out.exit_code} as expected", fields=fields)


_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")


def count_tests(text: str) -> tuple[int, int]:
    """Passed and failed counts from a pytest-style summary ("3 passed, 1 failed, 2 errors")."""
    passed = failed = 0
    for line in reversed(text.splitlines()):
        found = _COUNT.findall(line)
        if found:
            for number, word in found:
                if word == "passed":
                    passed = int(number)
                else:
                    failed += int(number)
            break
    return passed, failed


async def run_tests(
    check: PytestCheck, config: TetherConfig | None, heartbeat: Heartbeat | None
) -> Verdict:
    out = await _run_command(check, config, heartbeat)
    # The summary line is at the end: the tails are enough, whatever the size of the output.
    passed, failed = count_tests(
        out.stdout.tail.decode(errors="replace") + "\n" + out.stderr.tail.decode(errors="replace")
    )
    fields = {**_process_fields(out), "tests_passed": passed, "tests_failed": failed}
    if unfinished := _did_not_finish(out, check.timeout_seconds, fields):
        return unfinished
    counts = f"{passed} passed, {failed} failed"
    if out.exit_code != 0:
        return _failed(f"tests failed (exit code {out.exit_code}): {counts}", **fields)
    if passed < check.min_passed:
        return _failed(
            f"only {passed} tests passed, at least {check.min_passed} required", **fields
        )
    return Verdict(True, counts, fields=fields)


_MISSING = object()


def json_path(document: Any, path: str) -> Any:
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif (
            isinstance(node, list)
            and part.lstrip("-").isdigit()
            and -len(node) <= int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            return _MISSING
    return node


async def run_http(check: HttpCheck) -> Verdict:
    body = Capture()
    try:
        async with (
            httpx.AsyncClient(timeout=check.timeout_seconds, follow_redirects=True) as client,
            client.stream(check.method, check.url) as response,
        ):
            # The whole exchange is bounded, not only each read: a server trickling bytes
            # must not hold the check past its timeout.
            async with asyncio.timeout(check.timeout_seconds):
                async for chunk in response.aiter_bytes():
                    body.feed(chunk)
    except (httpx.HTTPError, TimeoutError) as exc:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException | TimeoutError) else "failed"
        msg = f"{check.method} {check.url} {kind}: {type(exc).__name__}: {exc}".rstrip(": ")
        fields = {
            "output_excerpt": body.excerpt(EVIDENCE_EXCERPT_BYTES),
            "output_bytes": body.total,
        }
        return Verdict(False, msg, error=msg, fields=fields)
    fields = {
        "status_code": response.status_code,
        "output_excerpt": body.excerpt(EVIDENCE_EXCERPT_BYTES),
        "output_bytes": body.total,
    }
    if response.status_code != check.expect_status:
        return _failed(f"expected HTTP {check.expect_status}, got {response.status_code}", **fields)
    text = body.searchable()
    if check.body_contains is not None and check.body_contains not in text:
        return _failed(f"response body does not contain {check.body_contains!r}", **fields)
    if check.json_field is not None:
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            return _failed("response body is not JSON", **fields)
        value = json_path(document, check.json_field)
        if value is _MISSING:
            return _failed(f"JSON field {check.json_field!r} is missing", **fields)
        if check.json_value is not None and value != check.json_value:
            return _failed(
                f"JSON field {check.json_field!r} is {value!r}, expected {check.json_value!r}",
                **fields,
            )
    return Verdict(True, f"HTTP {response.status_code} as expected", fields=fields)


GIT_TIME_LIMIT = 30.0


async def git(repo: str, *args: str, time_limit: float = GIT_TIME_LIMIT) -> ProcessOutcome:
    """A git command in `repo`, with the same time limit and bounded capture as every check."""
    return await run_process(["git", "-C", repo, *args], cwd=None, time_limit=time_limit)


async def run_git(inp: RunCheckInput, check: GitCheck, config: TetherConfig) -> Verdict:
    repo = config.repositories.get(check.repository)
    if repo is None:
        return _failed(f"repository {check.repository!r} is not configured in tether.toml")
    if not os.path.isdir(repo.path):
        return _failed(f"repository {check.repository!r}: folder {repo.path} does not exist")
    limit = check.timeout_seconds

    async def resolve(rev: str) -> tuple[ProcessOutcome, str]:
        out = await git(repo.path, "rev-parse", "--verify", "--quiet", rev, time_limit=limit)
        return out, out.stdout.searchable().strip()

    if check.tag:
        out, tagged = await resolve(f"refs/tags/{check.tag}^{{commit}}")
        if out.exit_code != 0:
            return _failed(f"tag {check.tag!r} does not exist in {check.repository}")
        if check.commit:
            want, wanted = await resolve(f"{check.commit}^{{commit}}")
            if want.exit_code != 0 or wanted != tagged:
                return _failed(f"tag {check.tag!r} points at {tagged[:12]}, not at {check.commit}")
        return Verdict(
            True, f"tag {check.tag!r} points at {tagged[:12]}", fields={"commit": tagged}
        )

    assert check.branch is not None
    out, _ = await resolve(f"{check.branch}^{{commit}}")
    if out.exit_code != 0:
        return _failed(f"branch {check.branch!r} does not exist in {check.repository}")
    args = ["log", "-1", "--format=%H%x09%cI%x09%s", check.branch]
    if check.since_task_created and inp.task_created_at is not None:
        args.insert(2, f"--since={inp.task_created_at.isoformat()}")
    if check.path:
        args += ["--", check.path]
    out = await git(repo.path, *args, time_limit=limit)
    if out.exit_code != 0:
        return _failed(f"git log failed on {check.repository}", **_process_fields(out))
    line = out.stdout.searchable().strip()
    if not line:
        where = f" touching {check.path!r}" if check.path else ""
        since = " since the task was created" if check.since_task_created else ""
        return _failed(f"no commit on {check.branch!r}{where}{since}")
    sha, when, subject = [*line.split("\t", 2), "", ""][:3]
    return Verdict(
        True,
        f"commit {sha[:12]} on {check.branch!r} at {when}: {subject}",
        fields={"commit": sha, "output_excerpt": line},
    )


async def run_check(
    inp: RunCheckInput, config: TetherConfig, heartbeat: Heartbeat | None = None
) -> CheckEvidence:
    started, t0 = datetime.now(UTC), time.monotonic()
    check = inp.check
    if isinstance(check, HttpCheck):
        verdict = await run_http(check)
    elif isinstance(check, ShellCheck):
        verdict = await run_shell(check, config, heartbeat)
    elif isinstance(check, PytestCheck):
        verdict = await run_tests(check, config, heartbeat)
    else:
        verdict = await run_git(inp, check, config)
    secrets = known_secrets(config)
    return CheckEvidence(
        index=inp.index,
        name=check.label(inp.index),
        kind=check.kind,
        passed=verdict.passed,
        summary=redact(verdict.summary, secrets),
        error=redact(verdict.error, secrets) if verdict.error else None,
        started_at=started,
        duration_ms=int((time.monotonic() - t0) * 1000),
        **{k: redact(v, secrets) if isinstance(v, str) else v for k, v in verdict.fields.items()},
    )
