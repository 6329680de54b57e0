"""The gateway: the agents' only door into Tether.

An HTTP server (Starlette on uvicorn) holding one Temporal client, sealed with the gateway's key,
and one PostgreSQL pool. Each request carries an agent's token (`tether agent token AGENT`); the
gateway speaks only for the agent the token names and seals what it forwards for that agent (and
the runtime session a hook event came from), so agents need no access to Temporal or the
database at all.

- `POST /hooks/claude-code/EVENT`: Claude Code's hook input, from its `type: "http"` hooks or from
  the `tether hook` command (the fallback, which forwards here); answered with the hook output.
- `/v1/...`: what an agent's `tether` commands ask (claim, submit, note, declare, recheck).
- `GET /health`.
"""
