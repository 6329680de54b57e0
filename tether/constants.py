"""What the worker, the CLI, the tests and docker-compose.yml share on the Temporal side: the
names (from tether.names, re-exported), the typed search-attribute keys and the timeouts."""

from datetime import timedelta

from temporalio.common import SearchAttributeKey

from tether.names import (
    AGENTS_QUEUE_SUFFIX,
    AUDIT_ANCHOR_SCHEDULE_ID,
    AUDIT_ANCHOR_WORKFLOW,
    CREDENTIAL_WATCH_SCHEDULE_ID,
    DEFAULT_NAMESPACE,
    DEFAULT_TASK_QUEUE,
    DEPLOY_WORKFLOW_ID_PREFIX,
    GATEWAY_PORT,
    LOCK_WORKFLOW_ID_PREFIX,
    NOTIFY_WORKFLOW_ID_PREFIX,
    POSTGRES_PORT,
    SA_AGENT_NAME,
    SA_NAMES,
    SA_SERVICE_NAME,
    SA_STATE_NAME,
    SA_TASK_NAME,
    SESSION_WORKFLOW_ID_PREFIX,
    TASK_WORKFLOW_ID_PREFIX,
    TEMPORAL_HTTP_PORT,
    TEMPORAL_PORT,
    TEMPORAL_UI_PORT,
    WAKE_SCHEDULE_PREFIX,
    deploy_lane,
    lock_workflow_id,
    notify_workflow_id,
    session_workflow_id,
    task_workflow_id,
)

__all__ = [
    "AGENTS_QUEUE_SUFFIX",
    "AUDIT_ANCHOR_SCHEDULE_ID",
    "AUDIT_ANCHOR_WORKFLOW",
    "CREDENTIAL_WATCH_SCHEDULE_ID",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TASK_QUEUE",
    "DEPLOY_WORKFLOW_ID_PREFIX",
    "GATEWAY_PORT",
    "LOCK_WORKFLOW_ID_PREFIX",
    "NOTIFY_WORKFLOW_ID_PREFIX",
    "POSTGRES_PORT",
    "SA_NAMES",
    "SESSION_WORKFLOW_ID_PREFIX",
    "TASK_WORKFLOW_ID_PREFIX",
    "TEMPORAL_HTTP_PORT",
    "TEMPORAL_PORT",
    "TEMPORAL_UI_PORT",
    "WAKE_SCHEDULE_PREFIX",
    "deploy_lane",
    "lock_workflow_id",
    "notify_workflow_id",
    "session_workflow_id",
    "task_workflow_id",
]

SA_TASK = SearchAttributeKey.for_keyword(SA_TASK_NAME)
SA_AGENT = SearchAttributeKey.for_keyword(SA_AGENT_NAME)
SA_STATE = SearchAttributeKey.for_keyword(SA_STATE_NAME)
SA_SERVICE = SearchAttributeKey.for_keyword(SA_SERVICE_NAME)
SEARCH_ATTRIBUTES = (SA_TASK, SA_AGENT, SA_STATE, SA_SERVICE)

# Activity timeouts. A check's own timeout bounds its activity; this margin covers start-up and
# the write of its evidence.
CHECK_ACTIVITY_MARGIN = timedelta(seconds=30)
CHECK_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
CHECK_ACTIVITY_MAX_ATTEMPTS = 3
STORE_ACTIVITY_TIMEOUT = timedelta(seconds=30)

# Evidence is stored in workflow history and PostgreSQL: keep each excerpt small.
EVIDENCE_EXCERPT_BYTES = 4000
