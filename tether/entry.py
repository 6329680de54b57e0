"""The `tether` executable. Hooks run on every tool call of every agent, so `tether hook …` is
answered without importing the Temporal SDK or the rest of the CLI."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["hook"]:
        from tether.hook.claude_code import main as hook_main

        sys.stdout.flush()
        raise SystemExit(hook_main(argv[1:]))
    from tether.cli.cockpit import main as read_main

    read_main(argv)  # `task list` and `inbox` end here, without pydantic or the Temporal SDK
    from tether.cli.main import main as cli_main

    cli_main(argv)
