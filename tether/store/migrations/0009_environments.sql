-- Environments (issue 16): a service runs in staging and, when configured, in production. What
-- runs, the cooldown and the rollout in progress are kept per service and environment; every
-- deployment says where it went. Rows from before are staging's.
ALTER TABLE service_state ADD COLUMN environment text NOT NULL DEFAULT 'staging';
ALTER TABLE service_state DROP CONSTRAINT service_state_pkey;
ALTER TABLE service_state ADD PRIMARY KEY (service, environment);

ALTER TABLE deployments ADD COLUMN environment text NOT NULL DEFAULT 'staging';
-- Promotion asks when a commit became healthy in staging, and what replaced it there.
CREATE INDEX deployments_environment_idx
    ON deployments (service, environment, state, finished_at);
