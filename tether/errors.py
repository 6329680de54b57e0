"""Errors: user-facing ones for the CLI, and the typed ApplicationError names used across Tether."""


class TetherError(Exception):
    """A problem the user can act on; the CLI prints its message (never a traceback)."""

    exit_code = 2


# ApplicationError types. Business refusals are non-retryable: retrying them changes nothing.
CLAIM_REFUSED = "ClaimRefused"
SUBMIT_REFUSED = "SubmitRefused"
ACTION_REFUSED = "ActionRefused"
INVALID_CHECK = "InvalidCheck"
# A credential was refused (HTTP 401/403): never retried, it becomes the session's blocker.
# The error's details carry the credential's name and the reason, never its value.
CREDENTIAL_REJECTED = "CredentialRejected"
SESSION_REFUSED = "SessionRefused"
