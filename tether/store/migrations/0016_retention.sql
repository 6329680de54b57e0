-- A year's record: what `tether prune` keeps of the ledger once its rows are older than the
-- configured age (issue 31), and the indexes that keep the founder's reads bounded by a window
-- however long the record grows.

-- The tool-call log, per agent, task, UTC day and tool: how many calls, how many failed.
CREATE TABLE tool_call_days (
    agent   text NOT NULL,
    task_id text NOT NULL DEFAULT '',
    day     date NOT NULL,
    tool    text NOT NULL,
    calls   bigint NOT NULL,
    failed  bigint NOT NULL,
    PRIMARY KEY (agent, task_id, day, tool)
);
CREATE INDEX tool_call_days_task_idx ON tool_call_days (task_id);

-- The cost ledger, per agent, task and UTC day of the session's last spend.
CREATE TABLE cost_days (
    agent              text NOT NULL,
    task_id            text NOT NULL DEFAULT '',
    day                date NOT NULL,
    sessions           bigint NOT NULL,
    usd                double precision NOT NULL,
    input_tokens       bigint NOT NULL,
    output_tokens      bigint NOT NULL,
    cache_read_tokens  bigint NOT NULL,
    cache_write_tokens bigint NOT NULL,
    PRIMARY KEY (agent, task_id, day)
);
CREATE INDEX cost_days_task_idx ON cost_days (task_id);

-- Each prune the founder applied: when, by whom, the age, and what it removed and kept.
CREATE TABLE prunes (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    by        text NOT NULL,
    cutoff    timestamptz NOT NULL,
    removed   jsonb NOT NULL,
    kept      jsonb NOT NULL
);

-- The status lists the tasks not closed and those closed in the last week: one index each.
CREATE INDEX tasks_open_idx ON tasks (created_at, id) WHERE state NOT IN ('done', 'cancelled');
CREATE INDEX tasks_updated_idx ON tasks (updated_at);
-- `tether task list`, newest first, a page at a time.
CREATE INDEX tasks_created_idx ON tasks (created_at DESC, id DESC);
-- The status's counts of ended sessions and pseudo-work, over a window.
CREATE INDEX sessions_ended_idx ON sessions (ended_at) WHERE ended_at IS NOT NULL;
-- The pruned rows are found by age with a scan, once a prune: an index on the tool-call log
-- would cost every report a write.
CREATE INDEX inbox_cleared_idx ON inbox (cleared_at) WHERE cleared_at IS NOT NULL;
-- `tether inbox`, newest first, a page at a time (all items page by the primary key).
CREATE INDEX inbox_open_id_idx ON inbox (id) WHERE cleared_at IS NULL;
CREATE INDEX egress_refusals_at_idx ON egress_refusals (at);
-- A task's tool calls, for `tether task show` (one more index write per reported call).
CREATE INDEX tool_calls_task_idx ON tool_calls (task_id) WHERE task_id IS NOT NULL;
-- An agent's tasks in a state (the brief, the deliverable's check): not every task it ever held.
CREATE INDEX tasks_assignee_state_idx ON tasks (assignee, state, updated_at);
