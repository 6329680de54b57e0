"""Claude Code payloads and transcript lines as the runtime writes them, for the governors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# What the pinned Claude Code CLI sent each hook, recorded by tests/test_claude_code.py.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude-code"

FORBIDDEN = (
    'Error from server (Forbidden): deployments.apps "api" is forbidden: User '
    '"system:serviceaccount:agents:devops" cannot patch resource "deployments" in API group '
    '"apps" in the namespace "prod"'
)


KUBECTL_RETRIES = [
    "kubectl set image deploy/api api=registry/api:1.4.2 -n prod",
    "kubectl -n prod set image deployment/api api=registry/api:1.4.2 --record",
    "kubectl --namespace prod set image deploy/api api=registry/api:1.4.3",
    "KUBECONFIG=~/.kube/prod kubectl set image deploy/api api=registry/api:1.4.3 -n prod",
    "cd infra && kubectl set image deploy/api api=registry/api:1.4.3 --namespace=prod | tee out",
]


def failure(command: str, error: str, tool_use_id: str = "t") -> dict[str, Any]:
    """A PostToolUseFailure payload for a failing Bash call: the one the pinned Claude Code
    sent (tests/fixtures), with this command and error."""
    payload = claude_code_payload("PostToolUseFailure")
    payload.update(
        session_id="cc-1",
        tool_input={"command": command},
        tool_use_id=tool_use_id,
        error=error,
        is_interrupt=False,
    )
    return payload


def line(entry: dict[str, Any]) -> str:
    return json.dumps(entry) + "\n"


def assistant(mid: str, inp: int, read: int, write: int, out: int = 10, side: bool = False) -> str:
    return line(
        {
            "type": "assistant",
            "isSidechain": side,
            "requestId": f"req-{mid}",
            "message": {
                "id": mid,
                "model": "claude-sonnet-4-5",
                "usage": {
                    "input_tokens": inp,
                    "cache_read_input_tokens": read,
                    "cache_creation_input_tokens": write,
                    "output_tokens": out,
                },
            },
        }
    )


def claude_code_payload(name: str) -> dict[str, Any]:
    """A recorded payload: `PreToolUse`, `SessionStart-resume`, ..."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def sanitized(payload: dict[str, Any], tmp: Path, session_id: str) -> dict[str, Any]:
    """A payload with this run's folders and ids replaced, fit to keep in the repository."""
    text = json.dumps(payload).replace(str(tmp), "/tmp/run").replace(session_id, "session-1")
    text = re.sub(r"/projects/[^/\"]+/", "/projects/-tmp-run-app/", text)
    data: dict[str, Any] = json.loads(text)
    for key in ("tool_use_id", "prompt_id"):
        if key in data:
            data[key] = f"<{key}>"
    return data


def forbidden_kubectl(folder: Path) -> Path:
    """A folder (made here) whose `kubectl` fails the way the cluster refuses the agent: put it
    first on the agent's PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    kubectl = folder / "kubectl"
    kubectl.write_text(f"#!/bin/sh\necho '{FORBIDDEN}' >&2\nexit 1\n")
    kubectl.chmod(0o755)
    return folder
