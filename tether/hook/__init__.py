"""The agent runtimes' side: hook adapters, their HTTP client, fingerprints and transcripts.

Standard library only (a test holds the rule): a hook runs on every tool call of every agent,
and importing the Temporal SDK alone costs more than the whole hook should.
"""
