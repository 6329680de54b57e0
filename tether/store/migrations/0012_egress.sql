-- Connections an agent's sandbox refused (issue 28): the agent, its process, where it tried to
-- go. Written by the runner as the sandbox tells it; an agent probing for a way out shows here.
CREATE TABLE egress_refusals (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    agent   text NOT NULL,
    process text NOT NULL,
    host    text NOT NULL,
    port    integer,
    detail  text NOT NULL DEFAULT ''
);
CREATE INDEX egress_refusals_agent_at_idx ON egress_refusals (agent, at);

-- Whether the agent's running process is sandboxed ('sandbox') or not ('none'): `tether status`
-- shows an unsandboxed agent as such.
ALTER TABLE sessions ADD COLUMN isolation text;
