"""Helpers of the e2e suite: a cluster handle, kubectl, deadline waits and background processes.

The fixtures in e2e/conftest.py hand these out; later suites (the controllers') build on them,
e.g. `spawn([sys.executable, "-m", "corral", "run"])` to run the operator against the cluster.
"""

from harness.cluster import Cluster, ClusterError
from harness.kubectl import Kubectl, KubectlError
from harness.process import ManagedProcess
from harness.wait import WaitTimeout, wait_for

__all__ = [
    "Cluster",
    "ClusterError",
    "Kubectl",
    "KubectlError",
    "ManagedProcess",
    "WaitTimeout",
    "wait_for",
]
