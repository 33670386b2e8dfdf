"""The fleet simulator: the operator's domain decisions, driven by simulated time."""
