-- Hard budgets (issue 15): each session's spend per UTC day (cumulative, never lowered), which
-- the agent's daily and the team's monthly budgets are summed from; and the founder's signed
-- orders that raise a budget, kept whole so every read verifies the signature again.
CREATE TABLE spend_days (
    session_key  text NOT NULL,
    agent        text NOT NULL,
    day          date NOT NULL,
    usd          double precision NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_key, day)
);
CREATE INDEX spend_days_day_idx ON spend_days (day, agent);

CREATE TABLE budget_orders (
    id         bigserial PRIMARY KEY,
    -- 'agent:<name>:day:<YYYY-MM-DD>' or 'team:month:<YYYY-MM>'
    scope      text NOT NULL,
    limit_usd  double precision NOT NULL,
    -- The FounderOrder as signed (action 'budget', subject '<scope>:<usd>').
    order_json jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX budget_orders_scope_idx ON budget_orders (scope, id);
