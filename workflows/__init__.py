"""Orchestration only: deterministic workflows, no I/O. Side effects live in activities/."""

from workflows.credential_watch import CredentialWatchWorkflow
from workflows.session import AgentSessionWorkflow
from workflows.task import TaskWorkflow

WORKFLOWS = [TaskWorkflow, AgentSessionWorkflow, CredentialWatchWorkflow]

__all__ = ["WORKFLOWS", "AgentSessionWorkflow", "CredentialWatchWorkflow", "TaskWorkflow"]
