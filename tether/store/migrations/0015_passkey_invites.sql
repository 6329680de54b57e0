-- One-time links that register a passkey (`tether founder passkey add`, issue 30): kept as the
-- token's hash; the browser's registration lands here for the founder's command to sign.
CREATE TABLE passkey_invites (
    token_hash text PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    challenge text,
    registered jsonb,
    registered_at timestamptz
);
