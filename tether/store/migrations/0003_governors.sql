-- The cost ledger: what each session spent on each task (task_id '' when it held none).
-- Rows are cumulative per (session, task) and written in batches: a retried write changes nothing.
CREATE TABLE cost_ledger (
    session_key  text NOT NULL,
    task_id      text NOT NULL DEFAULT '',
    agent        text NOT NULL,
    usd          double precision NOT NULL DEFAULT 0,
    input_tokens       bigint NOT NULL DEFAULT 0,
    output_tokens      bigint NOT NULL DEFAULT 0,
    cache_read_tokens  bigint NOT NULL DEFAULT 0,
    cache_write_tokens bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_key, task_id)
);
CREATE INDEX cost_ledger_task_idx ON cost_ledger (task_id);

-- Every reported tool call with its fingerprint (the anti-loop governor's evidence).
CREATE TABLE tool_calls (
    session_key  text NOT NULL,
    seq          integer NOT NULL,
    agent        text NOT NULL,
    task_id      text,
    at           timestamptz NOT NULL,
    tool         text NOT NULL,
    ok           boolean NOT NULL,
    action       text NOT NULL DEFAULT '',
    signature    text NOT NULL DEFAULT '',
    error        text NOT NULL DEFAULT '',
    exit_code    integer,
    PRIMARY KEY (session_key, seq)
);
CREATE INDEX tool_calls_agent_idx ON tool_calls (agent, at DESC);

-- The handoff's session, so a retried archive writes one row.
ALTER TABLE handoffs ADD COLUMN session_key text;
CREATE UNIQUE INDEX handoffs_session_idx ON handoffs (session_key) WHERE session_key IS NOT NULL;
