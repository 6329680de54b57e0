"""Errors: user-facing ones for the CLI, and the typed ApplicationError names used across Tether."""


class TetherError(Exception):
    """A problem the user can act on; the CLI prints its message (never a traceback)."""

    exit_code = 2


# ApplicationError types. Business refusals are non-retryable: retrying them changes nothing.
CLAIM_REFUSED = "ClaimRefused"
SUBMIT_REFUSED = "SubmitRefused"
ACTION_REFUSED = "ActionRefused"
INVALID_CHECK = "InvalidCheck"
# The workflow a request names is not running (closed, or never started).
NOT_RUNNING = "NotRunning"
# A credential was refused (HTTP 401/403): never retried, it becomes the session's blocker.
# The error's details carry the credential's name and the reason, never its value.
CREDENTIAL_REJECTED = "CredentialRejected"
SESSION_REFUSED = "SessionRefused"
# `attach` to a session that has ended (or is ending): wait for its workflow to close, then
# start the next session.
SESSION_ENDED = "SessionEnded"
# `attach` from another runtime session: the open one was ended in its favour; start the next.
SESSION_SUPERSEDED = "SessionSuperseded"
# Access was refused by the system itself (a file, a repository, a socket): retrying the same
# call cannot help, so it escalates (to the founder's inbox, or as failed evidence) at once.
PERMISSION_DENIED = "PermissionDenied"
# The input cannot be processed as given; the caller must change it, not retry it.
INVALID_INPUT = "InvalidInput"
# A message that changes state came without a valid seal for its sender (tether/trust/seals.py):
# refused, audited, never retried.
UNAUTHORISED = "Unauthorised"
# PostgreSQL cannot be reached: retried (an outage passes), said in one line.
STORE_UNAVAILABLE = "StoreUnavailable"

# The typed errors every activity retry policy treats as final: auth, permission, invalid input.
ESCALATE = (CREDENTIAL_REJECTED, PERMISSION_DENIED, INVALID_INPUT, INVALID_CHECK)
