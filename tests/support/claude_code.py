"""The real Claude Code CLI, headless and offline, governed by the hooks `tether hooks install`
writes.

The CLI is the pinned npm package in tests/runtimes/claude-code (package.json and its lock),
installed there with the machine's npm the first time a test needs it. It runs with `-p
--output-format stream-json` against the scripted Messages API of tests/support/model_api.py
(`ANTHROPIC_BASE_URL`, a dummy key), with its own HOME so nothing of the user's ~/.claude is
read or written. Every hook payload the CLI sends is also appended to a JSON-lines file, so a
test can read what Claude Code really sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.support.helpers import clean_environment
from tests.support.model_api import MODEL, ModelApi
from tether.hook.install import install

RUNTIME = Path(__file__).resolve().parents[1] / "runtimes" / "claude-code"
BINARY = RUNTIME / "node_modules" / ".bin" / "claude"


def pinned_version() -> str:
    manifest = json.loads((RUNTIME / "package.json").read_text())
    return str(manifest["dependencies"]["@anthropic-ai/claude-code"])


def installed_version() -> str | None:
    manifest = RUNTIME / "node_modules" / "@anthropic-ai" / "claude-code" / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_claude_code() -> Path:
    """The pinned CLI, installed with `npm ci` from the committed lock file when it is missing
    or another version. No npm is a one-line error saying how to get it, never a skip."""
    if installed_version() == pinned_version() and BINARY.exists():
        return BINARY
    return npm_ci(RUNTIME, BINARY, f"@anthropic-ai/claude-code@{pinned_version()}")


def npm_ci(folder: Path, binary: Path, what: str) -> Path:
    """`npm ci` in a pinned runtime's folder (tests/runtimes/NAME); its binary."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError(
            "the tests drive real agent CLIs, installed with npm: install Node.js 20 "
            "or newer with npm (Debian/Ubuntu: apt-get install nodejs npm; or "
            "https://nodejs.org/en/download), then run ./run test again"
        )
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or not binary.exists():
        raise RuntimeError(
            f"npm could not install {what} into {folder}: "
            f"{(done.stderr or done.stdout).strip()[-800:]}"
        )
    return binary


@dataclass
class ClaudeRun:
    code: int
    events: list[dict[str, Any]]
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        found = [e for e in self.events if e.get("type") == "result"]
        assert found, f"no result event; exit {self.code}; stderr: {self.stderr[-2000:]}"
        return found[-1]

    @property
    def session_id(self) -> str:
        return str(self.result["session_id"])

    def tool_results(self) -> list[dict[str, Any]]:
        """Every tool result the CLI fed back to the model, in order."""
        found = []
        for event in self.events:
            message = event.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            if event.get("type") == "user" and isinstance(content, list):
                found += [b for b in content if b.get("type") == "tool_result"]
        return found


@dataclass
class ClaudeCode:
    """One agent's Claude Code in one project, against one scripted model."""

    agent: str
    project: Path
    home: Path
    model: ModelApi
    # The gateway the hooks post to, the agent's token, and how the hooks reach the gateway.
    gateway: str
    token: str
    tether_home: Path
    transport: Literal["http", "command"] = "http"
    env: dict[str, str] = field(default_factory=dict)
    runs: list[list[dict[str, Any]]] = field(default_factory=list)

    @property
    def payloads_file(self) -> Path:
        return self.home / "hook-payloads.jsonl"

    def install_hooks(self) -> None:
        """What `tether hooks install --agent NAME` writes, plus a recorder of each payload."""
        path = install(self.project, self.agent, sys.executable, True, self.gateway, self.transport)
        settings = json.loads(path.read_text())
        record = f"{{ cat; echo; }} >> {self.payloads_file}"
        for groups in settings["hooks"].values():
            groups[-1]["hooks"].append({"type": "command", "command": record, "timeout": 5})
        path.write_text(json.dumps(settings, indent=2))

    def payloads(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.payloads_file.exists():
            return []
        rows = [json.loads(line) for line in self.payloads_file.read_text().splitlines() if line]
        return [r for r in rows if event is None or r.get("hook_event_name") == event]

    def environment(self, **extra: str) -> dict[str, str]:
        return clean_environment(
            HOME=str(self.home),
            **self.model.claude_env(),
            TETHER_HOME=str(self.tether_home),
            # The agent's identity and its only door into Tether: no Temporal, no database.
            TETHER_GATEWAY_URL=self.gateway,
            TETHER_AGENT_TOKEN=self.token,
            **{**self.env, **extra},
        )

    async def run(self, prompt: str, *args: str, seconds: float = 120, **env: str) -> ClaudeRun:
        """`claude -p PROMPT --output-format stream-json --verbose ARGS`, to its end."""
        argv = [
            str(BINARY),
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--verbose",
            # An autonomous agent runs without permission prompts; Tether's PreToolUse hook is
            # what stops a tool. IS_SANDBOX lets the CLI do that as root, as in CI.
            "--permission-mode",
            "bypassPermissions",
            # A 200,000-token window, as tether.toml's default context_window says (the CLI's
            # own default model, claude-opus-5-5, has 1,000,000).
            "--model",
            MODEL,
            *args,
        ]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=self.project,
            env=self.environment(**env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), seconds)
        except TimeoutError as exc:
            os.killpg(proc.pid, 9)
            out, err = await proc.communicate()
            raise AssertionError(f"claude ran past {seconds}s: {err.decode()[-2000:]}") from exc
        events = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        self.runs.append(events)
        assert proc.returncode is not None
        return ClaudeRun(proc.returncode, events, err.decode())
