"""Tether: structural guardrails for teams of AI agents, on Temporal."""

__version__ = "0.1.0"
