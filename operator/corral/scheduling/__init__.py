"""The scheduling layer, pure: the queue, the assumed-pod ledger, the scheduling pass over
waiting workloads, the typed actions every lifecycle returns, and the `Cluster` protocol the
operator, the simulator and the unit tests all drive the same code through."""
