"""Who may send which message: the rule every state-changing signal and update is held to.

The founder's seal is accepted everywhere (the founder's key is the root of trust). Besides it:
- the gateway (an agent's token, through its hooks, CLI or MCP) may report, attach, end, declare,
  note, ask for the deliverable check or a credential recheck, claim and submit, each only for
  the agent its token names (and, for a report, the runtime session it came from);
- the workers may send the workflow-to-workflow messages (a claim told to the session, a
  governor's hold told to the task, the lock's grants and requests), tell a session what
  the agent must hear (a refused deployment tag), pass on the spend and context the runner
  reads from the process it runs, and stop an agent's process or say how it ended (between
  the session and the process's own workflow).
Lifting a hold, cancelling or blocking a task and approving a deployment are the founder's only.

An approval or an order signed by the founder inside the message itself (what the Web UI can
send, pasted from `tether approve --print`) counts as the founder's seal for the handler that
takes it, bound to this workflow's subject.

Messages that only wait for something (`ready`, `opened`, `sync`, `planned`) need no seal.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.names import (
    DEPLOYMENT_WORKFLOW,
    LOCK_WORKFLOW,
    PASSKEYS_WORKFLOW,
    PROCESS_WORKFLOW,
    SESSION_WORKFLOW,
    TASK_WORKFLOW,
)

FOUNDER = "founder"
GATEWAY = "gateway"
WORKER = "worker"


@dataclass(frozen=True)
class Rule:
    # Who may send it, besides the founder.
    roles: frozenset[str] = frozenset()
    # For the gateway: where the agent it must speak for is read. "workflow": the session's own
    # agent (from its id); "arg": the message's `agent` field.
    agent_from: str | None = None
    # For the gateway: the message's field that must name the runtime session the seal names.
    session_field: str | None = None
    # A founder-signed form inside the argument that counts as the founder's seal.
    inner: str | None = None  # "approval" | "order" | "passkey"
    # For an inner order: the actions it may carry.
    order_actions: tuple[str, ...] = ()


_AGENT = frozenset({GATEWAY})
_WORKER = frozenset({WORKER})

RULES: dict[tuple[str, str], Rule] = {
    # The founder's passkeys revoked: the founder alone.
    (PASSKEYS_WORKFLOW, "revoke"): Rule(),
    # The session: the agent's runtime reports through the gateway.
    (SESSION_WORKFLOW, "report"): Rule(_AGENT, "workflow", "external_id"),
    (SESSION_WORKFLOW, "attach"): Rule(_AGENT, "workflow", "external_id"),
    (SESSION_WORKFLOW, "end"): Rule(_AGENT, "workflow", "external_id"),
    (SESSION_WORKFLOW, "check_deliverable"): Rule(_AGENT, "workflow"),
    (SESSION_WORKFLOW, "declare"): Rule(_AGENT, "workflow"),
    (SESSION_WORKFLOW, "note"): Rule(_AGENT, "workflow"),
    (SESSION_WORKFLOW, "recheck"): Rule(_AGENT, "workflow"),
    (SESSION_WORKFLOW, "release"): Rule(_WORKER),
    (SESSION_WORKFLOW, "task_claimed"): Rule(_WORKER),
    (SESSION_WORKFLOW, "notice"): Rule(_WORKER),
    # The runtime's own spend and context, read by the runner from the process it runs.
    (SESSION_WORKFLOW, "runtime_usage"): Rule(_WORKER),
    (SESSION_WORKFLOW, "release_hold"): Rule(inner="order", order_actions=("release",)),
    # Starting the agent's process: the founder, or the workers (its wake schedule); stopping
    # it is the founder's alone (holds stop it from inside the workflow).
    (SESSION_WORKFLOW, "run_agent"): Rule(_WORKER),
    (SESSION_WORKFLOW, "stop_agent"): Rule(),
    # The agent's process runs in a workflow of its own: the session (through the workers)
    # stops it, and it tells the session how it ended.
    (SESSION_WORKFLOW, "process_ended"): Rule(_WORKER),
    (PROCESS_WORKFLOW, "stop"): Rule(_WORKER),
    # The task: agents claim and submit for themselves; the founder decides the rest.
    (TASK_WORKFLOW, "claim"): Rule(_AGENT, "arg"),
    (TASK_WORKFLOW, "submit"): Rule(_AGENT, "arg"),
    (TASK_WORKFLOW, "governor_hold"): Rule(_WORKER),
    (TASK_WORKFLOW, "cancel"): Rule(inner="order", order_actions=("cancel",)),
    (TASK_WORKFLOW, "block"): Rule(inner="order", order_actions=("block",)),
    (TASK_WORKFLOW, "unblock"): Rule(inner="order", order_actions=("unblock",)),
    (TASK_WORKFLOW, "resume"): Rule(inner="order", order_actions=("resume",)),
    # The deployment: the founder approves; the lock tells it when it holds the service.
    (DEPLOYMENT_WORKFLOW, "approve"): Rule(inner="approval"),
    (DEPLOYMENT_WORKFLOW, "submit_approval"): Rule(inner="approval"),
    # The founder's approval signed on the founder's device (a passkey the founder's key
    # enrolled): it carries its own proof, whoever passes it on.
    (DEPLOYMENT_WORKFLOW, "approve_by_passkey"): Rule(inner="passkey"),
    (DEPLOYMENT_WORKFLOW, "lock_granted"): Rule(_WORKER),
    # The lock: only deployments (through the workers) queue, renew and release.
    (LOCK_WORKFLOW, "acquire"): Rule(_WORKER),
    (LOCK_WORKFLOW, "renew"): Rule(_WORKER),
    (LOCK_WORKFLOW, "release"): Rule(_WORKER),
}

# Updates that change nothing: they wait for a state and answer it.
UNSEALED: frozenset[tuple[str, str]] = frozenset(
    {
        (SESSION_WORKFLOW, "ready"),
        (TASK_WORKFLOW, "opened"),
        (TASK_WORKFLOW, "sync"),
        (DEPLOYMENT_WORKFLOW, "planned"),
    }
)


def rule(workflow_type: str, handler: str) -> Rule | None:
    """The rule for a message; None when it needs no seal. A message Tether does not know is
    held to the strictest rule (the founder's seal)."""
    if (workflow_type, handler) in UNSEALED:
        return None
    return RULES.get((workflow_type, handler), Rule())
