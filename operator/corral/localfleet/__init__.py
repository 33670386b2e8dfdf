"""Tooling for the local fleet: a real control plane on loopback with simulated GPU machines.

Not domain code: it builds or finds the Kubernetes binaries (`binaries`), turns a fleet file into
Node objects (`fleetfile`, `nodes`), describes how kwok drives pods through their lifecycle
(`stages`) and runs the whole thing with kwokctl (`cluster`). `corral fleet` and the e2e harness
are its users.
"""
