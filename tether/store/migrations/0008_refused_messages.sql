-- Messages a workflow refused because of who sent them (no seal, another key, a replay, the
-- wrong agent), written by the workflow's guard through an activity; `tether status` counts them.
CREATE TABLE refused_messages (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL,
    workflow_id   text NOT NULL,
    workflow_type text NOT NULL,
    handler       text NOT NULL,
    kind          text NOT NULL,
    reason        text NOT NULL,
    role          text,
    signer        text,
    agent         text
);
CREATE INDEX refused_messages_at_idx ON refused_messages (at);
