"""Names every layer shares, in the standard library only: the hook (which must not import the
Temporal SDK) and the workflows import them from here, so no name is ever copied.

Workflow types and handler names are part of the wire protocol: renaming one breaks running
workflows and the committed replay histories.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_TASK_QUEUE = "tether"
DEFAULT_NAMESPACE = "default"

TEMPORAL_PORT = 7233
TEMPORAL_UI_PORT = 8233
TEMPORAL_HTTP_PORT = 7243
POSTGRES_PORT = 55432
GATEWAY_PORT = 8787
GATEWAY_BIND = f"127.0.0.1:{GATEWAY_PORT}"
DEFAULT_GATEWAY_URL = f"http://127.0.0.1:{GATEWAY_PORT}"

# Agent names, task ids: lower case, digits, '.', '_', '-'; they become workflow ids.
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"

# Who holds a task or session a governor put on hold (only a founder-signed order lifts it).
GOVERNOR = "tether"

# Workflow types.
TASK_WORKFLOW = "TaskWorkflow"
SESSION_WORKFLOW = "AgentSessionWorkflow"
DEPLOYMENT_WORKFLOW = "DeploymentWorkflow"
LOCK_WORKFLOW = "ServiceLockWorkflow"
PROCESS_WORKFLOW = "AgentProcessWorkflow"
NOTIFY_WORKFLOW = "NotifyWorkflow"

# The session's handlers that runtimes' hooks call by name.
SESSION_ATTACH = "attach"
SESSION_END = "end"
SESSION_REPORT = "report"
SESSION_GATE = "gate"
SESSION_VIEW = "view_session"
SESSION_CHECK_DELIVERABLE = "check_deliverable"

# Workflow ids carry the uniqueness rules: one workflow per task, one open session per agent,
# one lock per service, one delivery per inbox row.
TASK_WORKFLOW_ID_PREFIX = "task-"
SESSION_WORKFLOW_ID_PREFIX = "session-"
DEPLOY_WORKFLOW_ID_PREFIX = "deploy-"
LOCK_WORKFLOW_ID_PREFIX = "lock-"
NOTIFY_WORKFLOW_ID_PREFIX = "notify-"
PROCESS_WORKFLOW_ID_PREFIX = "process-"
CREDENTIAL_WATCH_SCHEDULE_ID = "tether-credential-watch"
# The audit chain's head, anchored in Temporal's history every minute (workflows/audit.py).
AUDIT_ANCHOR_SCHEDULE_ID = "tether-audit-anchor"
AUDIT_ANCHOR_WORKFLOW = "AuditAnchorWorkflow"
# The founder's passkeys revoked, kept in Temporal (workflows/passkeys.py): one per Tether (its
# task queue, where its workers answer the judges' queries).
PASSKEYS_WORKFLOW = "PasskeyRevocationsWorkflow"
PASSKEYS_WORKFLOW_ID_PREFIX = "tether-passkey-revocations-"


def passkeys_workflow_id(task_queue: str) -> str:
    return f"{PASSKEYS_WORKFLOW_ID_PREFIX}{task_queue}"


# The queue of the agents' processes, beside a worker's task queue: <queue>-agents.
AGENTS_QUEUE_SUFFIX = "-agents"
# One per agent with `wake`: tether-wake-<agent>.
WAKE_SCHEDULE_PREFIX = "tether-wake-"

# Search attributes (the founder filters Tether's workflows by them in the Web UI).
SA_TASK_NAME = "TetherTask"
SA_AGENT_NAME = "TetherAgent"
SA_STATE_NAME = "TetherState"
SA_SERVICE_NAME = "TetherService"
SA_NAMES = (SA_TASK_NAME, SA_AGENT_NAME, SA_STATE_NAME, SA_SERVICE_NAME)


def worktree_branch(agent: str) -> str:
    """The branch of the git worktree Tether makes for an agent it runs (`tether run`)."""
    return f"tether/{agent}"


def task_workflow_id(task_id: str) -> str:
    return f"{TASK_WORKFLOW_ID_PREFIX}{task_id}"


def session_workflow_id(agent: str) -> str:
    """One open session per agent: the workflow id carries the rule."""
    return f"{SESSION_WORKFLOW_ID_PREFIX}{agent}"


def process_workflow_id(agent: str, process: str) -> str:
    """One workflow per process of an agent's (`process`: its runtime session and attempt)."""
    return f"{PROCESS_WORKFLOW_ID_PREFIX}{agent}-{process}"


def notify_workflow_id(inbox_id: int) -> str:
    """One delivery workflow per inbox row: its id is what makes "each item once" hold."""
    return f"{NOTIFY_WORKFLOW_ID_PREFIX}{inbox_id}"


def deploy_lane(service: str, environment: str = "staging") -> str:
    """What one lock serialises: a service in one environment (`api`, `api/production`); staging
    keeps the service's bare name, as it had before environments."""
    return service if environment == "staging" else f"{service}/{environment}"


def lock_workflow_id(service: str, environment: str = "staging") -> str:
    """One lock per service and environment: the workflow id carries the rule."""
    return f"{LOCK_WORKFLOW_ID_PREFIX}{deploy_lane(service, environment)}"


def inbox_command(action: str, item_id: int | None) -> str:
    """The one command that acts on an inbox item: its own, or acknowledging a notice."""
    if action:
        return action
    return f"tether inbox done {item_id}" if item_id is not None else ""


def inbox_see(detail: Mapping[str, object]) -> str:
    """Where to read more about an inbox notice (`detail["see"]`)."""
    value = detail.get("see")
    return value if isinstance(value, str) else ""
