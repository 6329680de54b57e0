"""Orchestration only: deterministic workflows, no I/O. Side effects live in activities/.

The worker's list of workflows is workflows/registry.py; this package imports nothing, since
the sandbox re-imports it for every workflow run.
"""
