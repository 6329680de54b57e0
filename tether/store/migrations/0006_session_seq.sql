-- A session's row carries the workflow's write sequence: two handlers' writes may finish out of
-- order, and the older snapshot must never overwrite the newer one.
ALTER TABLE sessions ADD COLUMN seq bigint NOT NULL DEFAULT 0;
