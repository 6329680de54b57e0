"""The founder's `tether` command: the parser, the task files, the cockpit on a terminal and the
demo. Nothing else imports this package (a test holds the rule)."""
