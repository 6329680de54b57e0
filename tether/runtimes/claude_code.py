"""Claude Code: Tether's hook language itself (tether/runtimes/base.py is its identity).

A Stop block is exit 2 with the reason on stderr (shown to the model once). Its hooks are
installed by tether/hook/install.py's `install` (HTTP hooks to the gateway, and a launcher for
the two that read the transcript). `tether run` starts it headless, streaming JSON, with no
permission prompts: Tether's PreToolUse hook is what stops a tool.
"""

from __future__ import annotations

from tether.runtimes.base import Runtime


class ClaudeCode(Runtime):
    name = "claude-code"
    model_hosts = ("api.anthropic.com",)
    # `assistant` messages' usage, once per message id, and the final `result` with
    # `total_cost_usd` and `modelUsage`.
    usage = "stream-json"

    def argv(
        self,
        binary: str,
        session: str,
        resume: bool,
        prompt: str,
        model: str | None,
        args: list[str],
    ) -> list[str] | None:
        argv = [binary, "--resume" if resume else "--session-id", session]
        argv += [
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--verbose",
            # Unattended: no permission prompts. Tether's PreToolUse hook is what stops a tool.
            "--permission-mode",
            "bypassPermissions",
        ]
        if model:
            argv += ["--model", model]
        return argv + list(args)


RUNTIME = ClaudeCode()
