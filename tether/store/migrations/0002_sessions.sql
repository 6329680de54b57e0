-- Agent sessions: one row per session workflow run, written by its activities.
CREATE TABLE sessions (
    workflow_id     text NOT NULL,
    run_id          text NOT NULL,
    agent           text NOT NULL,
    external_id     text,
    runtime         text NOT NULL,
    state           text NOT NULL,
    task_id         text,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    end_reason      text,
    blocker         jsonb,
    credentials     jsonb NOT NULL DEFAULT '[]',
    artifact_result jsonb,
    pseudo_work     boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent, started_at)
);
CREATE INDEX sessions_state_idx ON sessions (state);

-- What waits for the founder. `key` makes a repeated notification harmless.
CREATE TABLE inbox (
    id             bigserial PRIMARY KEY,
    key            text NOT NULL UNIQUE,
    kind           text NOT NULL,
    subject        text NOT NULL,
    title          text NOT NULL,
    detail         jsonb NOT NULL DEFAULT '{}',
    action         text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    cleared_at     timestamptz,
    delivered_at   timestamptz,
    delivery_error text
);
CREATE INDEX inbox_open_idx ON inbox (created_at) WHERE cleared_at IS NULL;

-- The last verdict on each credential, and the expiry it showed (GitHub's header, a JWT's exp).
CREATE TABLE credential_status (
    name       text PRIMARY KEY,
    kind       text NOT NULL,
    ok         boolean NOT NULL,
    verified   boolean NOT NULL,
    reason     text NOT NULL DEFAULT '',
    expires_at timestamptz,
    checked_at timestamptz NOT NULL
);

-- The knowledge base: briefs one session leaves for the next of the same agent.
CREATE TABLE handoffs (
    id          bigserial PRIMARY KEY,
    agent       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    brief       text NOT NULL,
    state       jsonb NOT NULL DEFAULT '{}',
    consumed_at timestamptz,
    consumed_by text
);
CREATE INDEX handoffs_agent_idx ON handoffs (agent, created_at DESC);

-- Finished deployments per service: what a session's "deploy" artifact is checked against.
CREATE TABLE deployments (
    id          bigserial PRIMARY KEY,
    service     text NOT NULL,
    commit      text NOT NULL,
    ref         text NOT NULL DEFAULT '',
    agent       text,
    state       text NOT NULL,
    finished_at timestamptz
);
CREATE INDEX deployments_service_idx ON deployments (service, finished_at DESC);
