-- `tether status` reads PostgreSQL alone (issue 18): what it used to ask each workflow is kept
-- in the rows by the workflows themselves.

-- An open session's figures (state, task, context, cost, hold, blocker, its process), written
-- by the session when any of them but the numbers change and with each ledger write; `at` in
-- the figures orders the writes.
ALTER TABLE sessions ADD COLUMN figures jsonb;
ALTER TABLE sessions ADD COLUMN figures_at timestamptz;
-- The agent's process the runner has started ("runtime session:attempt"): one in the figures
-- that the runner has not started yet waits for a worker with room (queued).
ALTER TABLE sessions ADD COLUMN process_started text;

-- A deployment from its first audit row on, not only its outcome: the status's last 24 hours
-- and each lane's lock queue.
ALTER TABLE deployments ADD COLUMN requested_at timestamptz;
ALTER TABLE deployments ADD COLUMN reason text NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN queued boolean NOT NULL DEFAULT false;
ALTER TABLE deployments ADD COLUMN holds_lock boolean NOT NULL DEFAULT false;
CREATE INDEX deployments_requested_idx ON deployments (requested_at);
