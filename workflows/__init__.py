"""Orchestration only: deterministic workflows, no I/O. Side effects live in activities/."""

from workflows.task import TaskWorkflow

WORKFLOWS = [TaskWorkflow]

__all__ = ["WORKFLOWS", "TaskWorkflow"]
