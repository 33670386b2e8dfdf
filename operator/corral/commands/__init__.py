"""Implementations of the `corral` subcommands, one module each."""
