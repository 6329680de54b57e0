-- Who put a task on hold: "tether" for the governors (a loop, a cost pause), whose holds only a
-- founder-signed order lifts; otherwise the founder who blocked it.
ALTER TABLE tasks ADD COLUMN held_by text;

-- Every founder order judged (resume, unblock, cancel, release): accepted or refused, and why.
CREATE TABLE founder_orders (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    action      text NOT NULL,
    subject     text NOT NULL,
    by          text NOT NULL,
    accepted    boolean NOT NULL,
    reason      text NOT NULL,
    judged_for  text NOT NULL
);
CREATE INDEX founder_orders_subject_idx ON founder_orders (subject, at);

-- The deployment rolling out a service now, taken in the same statement as the cooldown slot:
-- rollouts of one service never overlap, even if someone forges the lock workflow's signals.
ALTER TABLE service_state ADD COLUMN rolling_deployment text;
ALTER TABLE service_state ADD COLUMN rolling_until timestamptz;
