"""Names, ports and timeouts shared by the worker, the CLI, the tests and docker-compose.yml."""

from datetime import timedelta

from temporalio.common import SearchAttributeKey

DEFAULT_TASK_QUEUE = "tether"
DEFAULT_NAMESPACE = "default"

TEMPORAL_PORT = 7233
TEMPORAL_UI_PORT = 8233
TEMPORAL_HTTP_PORT = 7243
POSTGRES_PORT = 55432

TASK_WORKFLOW_ID_PREFIX = "task-"
SESSION_WORKFLOW_ID_PREFIX = "session-"
DEPLOY_WORKFLOW_ID_PREFIX = "deploy-"
LOCK_WORKFLOW_ID_PREFIX = "lock-"
NOTIFY_WORKFLOW_ID_PREFIX = "notify-"
CREDENTIAL_WATCH_SCHEDULE_ID = "tether-credential-watch"

# Search attributes let the founder filter Tether workflows in the Web UI.
SA_TASK = SearchAttributeKey.for_keyword("TetherTask")
SA_AGENT = SearchAttributeKey.for_keyword("TetherAgent")
SA_STATE = SearchAttributeKey.for_keyword("TetherState")
SA_SERVICE = SearchAttributeKey.for_keyword("TetherService")
# Names as the hook adapter uses them over Temporal's HTTP API (it does not import temporalio).
SA_NAMES = ("TetherTask", "TetherAgent", "TetherState", "TetherService")
SEARCH_ATTRIBUTES = (SA_TASK, SA_AGENT, SA_STATE, SA_SERVICE)

# Activity timeouts. A check's own timeout bounds its activity; this margin covers start-up and
# the write of its evidence.
CHECK_ACTIVITY_MARGIN = timedelta(seconds=30)
CHECK_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
CHECK_ACTIVITY_MAX_ATTEMPTS = 3
STORE_ACTIVITY_TIMEOUT = timedelta(seconds=30)

# Evidence is stored in workflow history and PostgreSQL: keep each excerpt small.
EVIDENCE_EXCERPT_BYTES = 4000


def task_workflow_id(task_id: str) -> str:
    return f"{TASK_WORKFLOW_ID_PREFIX}{task_id}"


def session_workflow_id(agent: str) -> str:
    """One open session per agent: the workflow id carries the rule."""
    return f"{SESSION_WORKFLOW_ID_PREFIX}{agent}"


def notify_workflow_id(inbox_id: int) -> str:
    """One delivery workflow per inbox row: its id is what makes "each item once" hold."""
    return f"{NOTIFY_WORKFLOW_ID_PREFIX}{inbox_id}"


def lock_workflow_id(service: str) -> str:
    """One lock per service: the workflow id carries the rule."""
    return f"{LOCK_WORKFLOW_ID_PREFIX}{service}"
