-- What runs where, and when each service was last rolled out: the stale-base guard and the
-- cooldown read and write this row atomically, so they hold across agents, workers and restarts.
CREATE TABLE service_state (
    service                 text PRIMARY KEY,
    deployed_commit         text,
    deployed_ref            text,
    deployed_deployment     text,
    deployed_at             timestamptz,
    last_rollout_at         timestamptz,
    last_rollout_deployment text
);

-- Every decision on a deployment: queued, approval accepted or refused and why, lock granted,
-- refused (stale base, cooldown), rolled out, health result, rolled back, released.
CREATE TABLE deploy_audit (
    id            bigserial PRIMARY KEY,
    deployment_id text NOT NULL,
    service       text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    kind          text NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX deploy_audit_service_idx ON deploy_audit (service, at);
CREATE INDEX deploy_audit_deployment_idx ON deploy_audit (deployment_id, id);

-- One row per deployment in `deployments` (created by 0002 for the sessions' deploy artifact).
ALTER TABLE deployments ADD COLUMN deployment_id text;
CREATE UNIQUE INDEX deployments_deployment_idx ON deployments (deployment_id)
    WHERE deployment_id IS NOT NULL;
