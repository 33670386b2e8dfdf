"""Disruption: termination notices, checkpoint hooks, and the deadline-aware spot policy (pure)."""
