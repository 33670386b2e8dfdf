"""kopf handlers, one module per kind: read, call the domain, write."""

HANDLERS: list[str] = []
"""Names of the controller modules registered with kopf (empty until controllers exist)."""
