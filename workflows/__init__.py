"""Orchestration only: deterministic workflows, no I/O. Side effects live in activities/."""

from workflows.credential_watch import CredentialWatchWorkflow
from workflows.deployment import DeploymentWorkflow
from workflows.lock import ServiceLockWorkflow
from workflows.notify import NotifyWorkflow
from workflows.session import AgentSessionWorkflow
from workflows.task import TaskWorkflow

WORKFLOWS = [
    TaskWorkflow,
    AgentSessionWorkflow,
    CredentialWatchWorkflow,
    DeploymentWorkflow,
    ServiceLockWorkflow,
    NotifyWorkflow,
]

__all__ = [
    "WORKFLOWS",
    "AgentSessionWorkflow",
    "CredentialWatchWorkflow",
    "DeploymentWorkflow",
    "NotifyWorkflow",
    "ServiceLockWorkflow",
    "TaskWorkflow",
]
