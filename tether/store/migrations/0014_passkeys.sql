-- The founder's passkeys (issue 30): each enrollment as the founder's key signed it, and its
-- revocation. A passkey not here is refused; one revoked is refused.
CREATE TABLE passkeys (
    credential_id text PRIMARY KEY,
    name text NOT NULL,
    enrollment jsonb NOT NULL,
    enrolled_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_by text
);
