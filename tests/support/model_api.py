"""The scripted Anthropic Messages API the tests drive Claude Code with: the product's own
(tether/ops/model_server.py, which `tether demo --runtime claude-code` serves too)."""

from tether.ops.model_server import MODEL, ModelApi, Request, Script, Turn, Usage

__all__ = ["MODEL", "ModelApi", "Request", "Script", "Turn", "Usage"]
