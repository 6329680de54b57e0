-- Tasks: the read model that listings and session briefs use. The workflow is the source of truth;
-- rows are written only by its activities, in the order of `seq`.
CREATE TABLE tasks (
    id            text PRIMARY KEY,
    workflow_id   text NOT NULL,
    title         text NOT NULL,
    state         text NOT NULL,
    assignee      text,
    -- The task as created, checks included. Fixed for the life of the task.
    spec          jsonb NOT NULL,
    last_evidence jsonb NOT NULL DEFAULT '[]',
    last_note     text,
    hold_reason   text,
    held_from     text,
    submissions   integer NOT NULL DEFAULT 0,
    seq           integer NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX tasks_state_idx ON tasks (state);
CREATE INDEX tasks_assignee_idx ON tasks (assignee);

-- Every transition, with who and when. Append-only: updates and deletes are refused.
CREATE TABLE task_events (
    task_id    text NOT NULL REFERENCES tasks (id),
    seq        integer NOT NULL,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    kind       text NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (task_id, seq)
);

CREATE FUNCTION tether_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER task_events_append_only
    BEFORE UPDATE OR DELETE ON task_events
    FOR EACH ROW EXECUTE FUNCTION tether_append_only();
