"""`python -m tether.hook claude-code EVENT --agent NAME`: what the hook launcher runs (the
standard library and this package only, so it also runs under `python -S`)."""

import sys

from tether.hook.claude_code import main

raise SystemExit(main(sys.argv[1:]))
