"""Adapters to outside data sources the domain reads through a protocol (metrics backends)."""
