"""Every side effect of Tether: PostgreSQL, git, HTTP, subprocesses. Workflows call these."""
