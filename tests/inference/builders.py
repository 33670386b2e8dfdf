"""An InferenceService as a test states it: `service("chat").replicas(2).dict()`."""

from __future__ import annotations

import copy
from typing import Any


class ServiceBuilder:
    def __init__(self, name: str, namespace: str = "default"):
        self._name, self._namespace = name, namespace
        self._spec: dict[str, Any] = {
            "acceleratorsPerReplica": 1,
            "template": {"spec": {"containers": [{"name": "server", "image": "vllm"}]}},
        }

    def replicas(self, count: int | None) -> ServiceBuilder:
        if count is None:
            self._spec.pop("replicas", None)
        else:
            self._spec["replicas"] = count
        return self

    def gpus(self, count: int) -> ServiceBuilder:
        self._spec["acceleratorsPerReplica"] = count
        return self

    def autoscaled(self, least: int = 1, most: int = 8, **behavior: Any) -> ServiceBuilder:
        self._spec["autoscaling"] = {
            "minReplicas": least,
            "maxReplicas": most,
            "objectives": [
                {
                    "name": "ttft",
                    "histogram": "vllm:time_to_first_token_seconds",
                    "type": "TimeToFirstToken",
                    "percentile": 99,
                    "latencyMs": 2000,
                }
            ],
            "metrics": {
                "prometheus": {
                    "url": "http://prometheus:9090",
                    "inFlight": "vllm:num_requests_running",
                }
            },
            "behavior": {"scaleDownStabilizationSeconds": 300, **behavior},
        }
        return self

    def image(self, image: str) -> ServiceBuilder:
        self._spec["template"]["spec"]["containers"][0]["image"] = image
        return self

    def spec(self, **fields: Any) -> ServiceBuilder:
        self._spec.update(fields)
        return self

    def dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "corral.dev/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": copy.deepcopy(self._spec),
        }


def service(name: str, namespace: str = "default") -> ServiceBuilder:
    return ServiceBuilder(name, namespace)
