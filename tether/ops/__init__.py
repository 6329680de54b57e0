"""Running Tether: the embedded stack (Temporal's dev server, PostgreSQL), `tether up`, the
process plumbing (tracing, metrics, a clean exit) and the loopback HTTP server."""
