"""Every workflow the worker runs.

Not in workflows/__init__.py: Temporal's sandbox imports a workflow's package again for every
workflow run, and a package that imported all six workflow modules made each new run pay for
all of them (about 38 ms of a session's first workflow task on a slow machine).
"""

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.audit import AuditAnchorWorkflow
from workflows.credential_watch import CredentialWatchWorkflow
from workflows.deployment import DeploymentWorkflow
from workflows.lock import ServiceLockWorkflow
from workflows.notify import NotifyWorkflow
from workflows.passkeys import PasskeyRevocationsWorkflow
from workflows.process import AgentProcessWorkflow
from workflows.session import AgentSessionWorkflow
from workflows.task import TaskWorkflow
from workflows.wake import WakeWorkflow

WORKFLOWS = [
    TaskWorkflow,
    AgentSessionWorkflow,
    AgentProcessWorkflow,
    CredentialWatchWorkflow,
    DeploymentWorkflow,
    ServiceLockWorkflow,
    NotifyWorkflow,
    WakeWorkflow,
    AuditAnchorWorkflow,
    PasskeyRevocationsWorkflow,
]


def sandbox() -> SandboxedWorkflowRunner:
    """Temporal's sandbox, with `cryptography` passed through: the seal check (workflows/
    guard.py) verifies Ed25519 signatures with it, and its native module must not be imported
    a second time inside the sandbox (it aborts the process)."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("cryptography")
    )


def workflow_runner(sandboxed: bool) -> WorkflowRunner:
    """How a worker runs workflow code (TETHER_WORKFLOW_SANDBOX). The sandbox catches workflow
    code that is not deterministic (a clock read, a random number, a file) the moment it runs,
    at about 1.6 times the worker's CPU per task lifecycle and a copy of the workflow's modules per
    workflow (scripts/bench_tasks.py and bench_memory.py measure both). The test suite runs
    every workflow in it, and the recorded histories replay in it (tests/test_replay.py); a
    production worker runs the same code without it unless asked."""
    return sandbox() if sandboxed else UnsandboxedWorkflowRunner()
