"""Claude Code payloads and transcript lines as the runtime writes them, for the governors."""

from __future__ import annotations

import json
from typing import Any

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
    """A PostToolUseFailure payload as Claude Code sends it for a failing Bash call."""
    return {
        "session_id": "cc-1",
        "hook_event_name": "PostToolUseFailure",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "roll out"},
        "tool_use_id": tool_use_id,
        "error": error,
        "is_interrupt": False,
        "duration_ms": 812,
    }


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
