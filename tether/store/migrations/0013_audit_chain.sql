-- The audit chain (issue 30): every audited event, append-only, each entry holding the hash of
-- the one before. `body` is the entry's canonical JSON, exactly the bytes hashed:
-- hash = sha256(prev || '\n' || body). Its head is anchored in Temporal every minute
-- (AuditAnchorWorkflow), so a rewrite of the whole chain is caught too.
CREATE TABLE audit_chain (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    prev text NOT NULL,
    hash text NOT NULL
);
CREATE INDEX audit_chain_subject ON audit_chain (subject, seq);
