"""Corral: a Kubernetes operator for accelerator fleets."""

__version__ = "0.1.0"
