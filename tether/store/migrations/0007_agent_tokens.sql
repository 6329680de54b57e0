-- Each agent's identity at the gateway: tokens the founder mints, stored only as SHA-256 hashes.
-- A token is shown once, when minted; revoking keeps the row (who, when) for the audit.
CREATE TABLE agent_tokens (
    id          bigserial PRIMARY KEY,
    agent       text NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    -- The first characters, to tell tokens apart in listings (never enough to use one).
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text,
    last_used_at timestamptz
);
CREATE INDEX agent_tokens_agent_idx ON agent_tokens (agent) WHERE revoked_at IS NULL;
