"""Who may do what, proved by signatures, not by who can reach a port.

- `seals`: the seal every state-changing message carries, and the one verifier of an Ed25519
  signature over exact bytes (`signed_by`), which the workflows' guard, the worker's activities
  and the CLI all use: no I/O, so workflows import it.
- `signing`: what the founder signs (a deployment approval, an order) and its check.
- `keys`: the key files under TETHER_HOME (made, loaded, mode 600).
- `tags`: the founder's SSH-signed staging and production tags, as git sees them.
"""
