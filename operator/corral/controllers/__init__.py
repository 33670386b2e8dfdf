"""kopf handlers and the runtime behind them: read, call the domain, write."""


def load() -> None:
    """Register the kopf handlers (importing the module is what registers them)."""
    from corral.controllers import handlers  # noqa: F401
