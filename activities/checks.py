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
) -> ProcessOutcome:
    """Run a command (argv, or a shell string) with a hard timeout and bounded output capture.

    The command gets its own process group so that a timeout kills everything it started.
    """
    if cwd is not None and not os.path.isdir(cwd):
        return ProcessOutcome(exit_code=None, error=f"working folder {cwd} does not exist")
    kwargs: dict[str, Any] = {
        "cwd": cwd,
        "stdin": asyncio.subprocess.DEVNULL,
        "stdout": asyncio.subprocess.PIPE,
        "stderr": asyncio.subprocess.PIPE,
        "start_new_session": True,
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


def _evidence(inp: RunCheckInput, started: datetime, t0: float, **fields: Any) -> CheckEvidence:
    return CheckEvidence(
        index=inp.index,
        name=inp.check.label(inp.index),
        kind=inp.check.kind,
        started_at=started,
        duration_ms=int((time.monotonic() - t0) * 1000),
        **fields,
    )


async def run_shell(
    inp: RunCheckInput, check: ShellCheck, heartbeat: Heartbeat | None
) -> CheckEvidence:
    started, t0 = datetime.now(UTC), time.monotonic()
    out = await run_process(
        check.command, cwd=check.cwd, time_limit=check.timeout_seconds, heartbeat=heartbeat
    )
    common = {
        "exit_code": out.exit_code,
        "output_excerpt": out.excerpt(),
        "output_bytes": out.output_bytes,
    }
    if out.error:
        return _evidence(
            inp, started, t0, passed=False, summary=out.error, error=out.error, **common
        )
    if out.timed_out:
        msg = f"timed out after {check.timeout_seconds:g}s and was killed"
        return _evidence(inp, started, t0, passed=False, summary=msg, error=msg, **common)
    if out.exit_code != check.expect_exit:
        return _evidence(
            inp,
            started,
            t0,
            passed=False,
            summary=f"expected exit code {check.expect_exit}, got {out.exit_code}",
            **common,
        )
    if check.stdout_pattern and not re.search(
        check.stdout_pattern, out.stdout.searchable(), re.MULTILINE
    ):
        return _evidence(
            inp,
            started,
            t0,
            passed=False,
            summary=f"stdout does not match /{check.stdout_pattern}/",
            **common,
        )
    return _evidence(
        inp, started, t0, passed=True, summary=f"exit code {out.exit_code} as expected", **common
    )


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
    inp: RunCheckInput, check: PytestCheck, heartbeat: Heartbeat | None
) -> CheckEvidence:
    started, t0 = datetime.now(UTC), time.monotonic()
    out = await run_process(
        check.command, cwd=check.cwd, time_limit=check.timeout_seconds, heartbeat=heartbeat
    )
    passed, failed = count_tests(
        out.stdout.tail.decode(errors="replace") + "\n" + out.stderr.tail.decode(errors="replace")
    )
    common = {
        "exit_code": out.exit_code,
        "output_excerpt": out.excerpt(),
        "output_bytes": out.output_bytes,
        "tests_passed": passed,
        "tests_failed": failed,
    }
    if out.error:
        return _evidence(
            inp, started, t0, passed=False, summary=out.error, error=out.error, **common
        )
    if out.timed_out:
        msg = f"test run timed out after {check.timeout_seconds:g}s and was killed"
        return _evidence(inp, started, t0, passed=False, summary=msg, error=msg, **common)
    counts = f"{passed} passed, {failed} failed"
    if out.exit_code != 0:
        return _evidence(
            inp,
            started,
            t0,
            passed=False,
            summary=f"tests failed (exit code {out.exit_code}): {counts}",
            **common,
        )
    if passed < check.min_passed:
        return _evidence(
            inp,
            started,
            t0,
            passed=False,
            summary=f"only {passed} tests passed, at least {check.min_passed} required",
            **common,
        )
    return _evidence(inp, started, t0, passed=True, summary=counts, **common)


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


async def run_http(inp: RunCheckInput, check: HttpCheck) -> CheckEvidence:
    started, t0 = datetime.now(UTC), time.monotonic()
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
        return _evidence(
            inp,
            started,
            t0,
            passed=False,
            summary=msg,
            error=msg,
            output_excerpt=body.excerpt(EVIDENCE_EXCERPT_BYTES),
            output_bytes=body.total,
        )
    common = {
        "status_code": response.status_code,
        "output_excerpt": body.excerpt(EVIDENCE_EXCERPT_BYTES),
        "output_bytes": body.total,
    }
    if response.status_code != check.expect_status:
        return _evidence(
            inp,
            started,
            t0,
            passed=False,
            summary=f"expected HTTP {check.expect_status}, got {response.status_code}",
            **common,
        )
    text = body.searchable()
    if check.body_contains is not None and check.body_contains not in text:
        return _evidence(
            inp,
            started,
            t0,
            passed=False,
            summary=f"response body does not contain {check.body_contains!r}",
            **common,
        )
    if check.json_field is not None:
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            return _evidence(
                inp, started, t0, passed=False, summary="response body is not JSON", **common
            )
        value = json_path(document, check.json_field)
        if value is _MISSING:
            return _evidence(
                inp,
                started,
                t0,
                passed=False,
                summary=f"JSON field {check.json_field!r} is missing",
                **common,
            )
        if check.json_value is not None and value != check.json_value:
            return _evidence(
                inp,
                started,
                t0,
                passed=False,
                summary=f"JSON field {check.json_field!r} is {value!r}, "
                f"expected {check.json_value!r}",
                **common,
            )
    return _evidence(
        inp, started, t0, passed=True, summary=f"HTTP {response.status_code} as expected", **common
    )


async def _git(repo: str, *args: str, time_limit: float) -> ProcessOutcome:
    return await run_process(["git", "-C", repo, *args], cwd=None, time_limit=time_limit)


async def run_git(inp: RunCheckInput, check: GitCheck, config: TetherConfig) -> CheckEvidence:
    started, t0 = datetime.now(UTC), time.monotonic()

    def fail(summary: str, out: ProcessOutcome | None = None) -> CheckEvidence:
        extra: dict[str, Any] = {}
        if out is not None:
            extra = {
                "exit_code": out.exit_code,
                "output_excerpt": out.excerpt(),
                "output_bytes": out.output_bytes,
            }
        return _evidence(inp, started, t0, passed=False, summary=summary, **extra)

    repo = config.repositories.get(check.repository)
    if repo is None:
        return fail(f"repository {check.repository!r} is not configured in tether.toml")
    if not os.path.isdir(repo.path):
        return fail(f"repository {check.repository!r}: folder {repo.path} does not exist")
    limit = check.timeout_seconds

    if check.tag:
        out = await _git(
            repo.path,
            "rev-parse",
            "--verify",
            "--quiet",
            f"refs/tags/{check.tag}^{{commit}}",
            time_limit=limit,
        )
        if out.exit_code != 0:
            return fail(f"tag {check.tag!r} does not exist in {check.repository}", out)
        tagged = out.stdout.searchable().strip()
        if check.commit:
            want = await _git(
                repo.path,
                "rev-parse",
                "--verify",
                "--quiet",
                f"{check.commit}^{{commit}}",
                time_limit=limit,
            )
            wanted = want.stdout.searchable().strip()
            if want.exit_code != 0 or wanted != tagged:
                return fail(f"tag {check.tag!r} points at {tagged[:12]}, not at {check.commit}")
        return _evidence(
            inp,
            started,
            t0,
            passed=True,
            commit=tagged,
            summary=f"tag {check.tag!r} points at {tagged[:12]}",
        )

    assert check.branch is not None
    out = await _git(
        repo.path,
        "rev-parse",
        "--verify",
        "--quiet",
        f"{check.branch}^{{commit}}",
        time_limit=limit,
    )
    if out.exit_code != 0:
        return fail(f"branch {check.branch!r} does not exist in {check.repository}", out)
    args = ["log", "-1", "--format=%H%x09%cI%x09%s", check.branch]
    if check.since_task_created and inp.task_created_at is not None:
        args.insert(2, f"--since={inp.task_created_at.isoformat()}")
    if check.path:
        args += ["--", check.path]
    out = await _git(repo.path, *args, time_limit=limit)
    line = out.stdout.searchable().strip()
    if out.exit_code != 0:
        return fail(f"git log failed on {check.repository}", out)
    if not line:
        where = f" touching {check.path!r}" if check.path else ""
        since = " since the task was created" if check.since_task_created else ""
        return fail(f"no commit on {check.branch!r}{where}{since}")
    sha, when, subject = [*line.split("\t", 2), "", ""][:3]
    return _evidence(
        inp,
        started,
        t0,
        passed=True,
        commit=sha,
        output_excerpt=line,
        summary=f"commit {sha[:12]} on {check.branch!r} at {when}: {subject}",
    )


async def run_check(
    inp: RunCheckInput, config: TetherConfig, heartbeat: Heartbeat | None = None
) -> CheckEvidence:
    check = inp.check
    if isinstance(check, HttpCheck):
        return await run_http(inp, check)
    if isinstance(check, ShellCheck):
        return await run_shell(inp, check, heartbeat)
    if isinstance(check, PytestCheck):
        return await run_tests(inp, check, heartbeat)
    return await run_git(inp, check, config)
