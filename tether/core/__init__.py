"""Pure, deterministic logic the workflows run: the governors' rules and the startup brief.
No I/O and no clock of its own, so the workflows' sandbox and plain unit tests can both run it."""
