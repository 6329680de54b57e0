"""Tether's Python client: the public API for starting and driving Tether's workflows.

    from tether import client as tether

    temporal = await tether.connect("127.0.0.1:7233", signer=tether.founder_signer())
    await tether.create_task(temporal, "tether", TaskSpec(...))

Every call takes a connected Temporal `Client` (from `connect`, which sets Tether's pydantic
data converter and tracing, and with a signer seals every message it sends: the founder's from
`founder_signer()`; workflows refuse unsealed messages that change state) and speaks Tether's
contracts (`tether.contracts`). A refusal by a
workflow (a claim of someone else's task, a submit before the claim, an unsigned order) raises
`Refused`, which says what was wrong; anything else the caller can act on raises `TetherError`.

- tasks: `create_task`, `claim_task`, `submit_task`, `get_view`, `task_record` (exact, with
  what the read model has not caught up with), `wait_recorded` (until it has), and the founder's
  `block_task`, `unblock_task`, `resume_task`, `cancel_task` (a governor's hold needs a
  `FounderOrder` signed with the founder's key: `tether.trust.signing.order`)
- sessions: `start_session` (update-with-start: start or attach), `report`, `note_session`,
  `session_view`, `session_gate`, `check_deliverable`, `recheck_session`, `release_session`,
  `end_session`, `request_end` (returns once the session took it)
- deployments: `request_deploy`, `deploy_view`, `deploy_queue`, `prepare_approval`,
  `submit_approval`, `approve_by_passkey` (an approval signed on the founder's device)
- status: `gather_status(store)`, the report `tether status --json` prints
"""

from tether.client.calls import Refused
from tether.client.connection import Sealing, connect, founder_signer
from tether.client.deployments import (
    approve_by_passkey,
    deploy_queue,
    deploy_view,
    new_deployment_id,
    prepare_approval,
    request_deploy,
    revoke_passkey,
    revoked_passkeys,
    submit_approval,
    tag_approval,
)
from tether.client.sessions import (
    REPORT_BUSY_WAIT,
    check_deliverable,
    end_session,
    note_session,
    recheck_session,
    release_session,
    report,
    request_end,
    run_agent,
    session_gate,
    session_view,
    start_session,
    stop_agent,
)
from tether.client.status import StatusReport, gather_status
from tether.client.tasks import (
    block_task,
    cancel_task,
    claim_task,
    create_task,
    get_view,
    resume_task,
    submit_task,
    task_record,
    unblock_task,
    wait_recorded,
)
from tether.errors import TetherError

__all__ = [
    "REPORT_BUSY_WAIT",
    "Refused",
    "Sealing",
    "StatusReport",
    "TetherError",
    "approve_by_passkey",
    "block_task",
    "cancel_task",
    "check_deliverable",
    "claim_task",
    "connect",
    "create_task",
    "deploy_queue",
    "deploy_view",
    "end_session",
    "founder_signer",
    "gather_status",
    "get_view",
    "new_deployment_id",
    "note_session",
    "prepare_approval",
    "recheck_session",
    "release_session",
    "report",
    "request_deploy",
    "request_end",
    "resume_task",
    "revoke_passkey",
    "revoked_passkeys",
    "run_agent",
    "session_gate",
    "session_view",
    "start_session",
    "stop_agent",
    "submit_approval",
    "submit_task",
    "tag_approval",
    "task_record",
    "unblock_task",
    "wait_recorded",
]
