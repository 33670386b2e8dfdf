"""Feature gates and API groups a local fleet's control plane runs with.

`corral fleet up --feature-gates K=V,... --runtime-config K=V,...` hands them to kwokctl
(`kubeFeatureGates`, `kubeRuntimeConfig`), which passes the gates to kube-apiserver,
kube-controller-manager and kube-scheduler and the runtime config to kube-apiserver. They are
fixed when the fleet is created: `up` on a fleet that runs with other flags refuses rather than
silently handing back a control plane that is not the one asked for.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_GATE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_API = re.compile(r"^(api/(all|ga|beta|alpha)|[a-z0-9.-]+/v[0-9a-z]+(/[a-z0-9.-]+)?|v1)$")
_BOOL = {"true": "true", "false": "false"}


class FlagError(ValueError):
    """A malformed --feature-gates or --runtime-config value; the message names the bad item."""


def _pairs(text: str, flag: str) -> list[tuple[str, str]]:
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FlagError(f"{flag}: {item!r} is not KEY=VALUE (e.g. {flag} Name=true)")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _boolean(value: str, item: str, flag: str) -> str:
    try:
        return _BOOL[value.lower()]
    except KeyError:
        raise FlagError(f"{flag}: {item}: the value must be true or false") from None


@dataclass(frozen=True)
class ControlPlaneFlags:
    """Feature gates (name -> "true"/"false") and runtime config (group/version -> "true"/...)."""

    feature_gates: dict[str, str] = field(default_factory=dict)
    runtime_config: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, feature_gates: str = "", runtime_config: str = "") -> ControlPlaneFlags:
        gates: dict[str, str] = {}
        for key, value in _pairs(feature_gates, "--feature-gates"):
            if not _GATE.match(key):
                raise FlagError(f"--feature-gates: {key!r} is not a feature gate name")
            gates[key] = _boolean(value, key, "--feature-gates")
        apis: dict[str, str] = {}
        for key, value in _pairs(runtime_config, "--runtime-config"):
            if not _API.match(key):
                raise FlagError(
                    f"--runtime-config: {key!r} is not an API group/version "
                    "(e.g. scheduling.k8s.io/v1alpha2, or api/alpha)"
                )
            apis[key] = _boolean(value, key, "--runtime-config")
        return cls(gates, apis)

    def merged(self, other: ControlPlaneFlags) -> ControlPlaneFlags:
        return ControlPlaneFlags(
            self.feature_gates | other.feature_gates, self.runtime_config | other.runtime_config
        )

    @property
    def default(self) -> bool:
        return not self.feature_gates and not self.runtime_config

    def kwokctl_options(self) -> dict[str, str]:
        """The KwokctlConfiguration options that carry these flags (none for the defaults)."""
        options = {}
        if self.feature_gates:
            options["kubeFeatureGates"] = _joined(self.feature_gates)
        if self.runtime_config:
            options["kubeRuntimeConfig"] = _joined(self.runtime_config)
        return options

    def describe(self) -> str:
        if self.default:
            return "default feature gates"
        parts = []
        if self.feature_gates:
            parts.append(f"--feature-gates={_joined(self.feature_gates)}")
        if self.runtime_config:
            parts.append(f"--runtime-config={_joined(self.runtime_config)}")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"featureGates": self.feature_gates, "runtimeConfig": self.runtime_config}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ControlPlaneFlags:
        return cls(dict(data.get("featureGates") or {}), dict(data.get("runtimeConfig") or {}))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> ControlPlaneFlags:
        """What a fleet was created with; a fleet created before flags existed ran the defaults."""
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, AttributeError):
            return cls()


def _joined(values: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(values.items()))


UPSTREAM_GANG_SCHEDULING = ControlPlaneFlags(
    feature_gates={
        "GenericWorkload": "true",
        "GangScheduling": "true",
        "TopologyAwareWorkloadScheduling": "true",
    },
    runtime_config={"scheduling.k8s.io/v1alpha2": "true"},
)
"""Kubernetes 1.36's alpha gang scheduling: Workload and PodGroup (scheduling.k8s.io/v1alpha2),
kube-scheduler's gang and topology-aware workload scheduling."""
