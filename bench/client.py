"""Which API client: Corral's own (aiohttp, dicts) against the maintained async clients.

The same canned API server (a separate process on 127.0.0.1 serving realistic Node and Pod JSON,
paginated as kube-apiserver does, and answering PATCHes) is read by each client in a process of
its own, so import cost, CPU and memory are each client's alone:

- LIST 2,000 nodes and 16,000 pods (seconds; the median of 2 lists in each of 2 runs), in the form the library yields:
  corral and kr8s(raw) give dicts; lightkube and kubernetes_asyncio give typed models (and
  kubernetes_asyncio(raw) the undecoded answer turned into dicts by json.loads);
- RSS: after import, and with the last LIST results held (MiB), and the peak;
- small merge PATCHes of pods: 2,000 at a concurrency of 32 (requests/s).

The alternative clients are installed into a venv of their own (.corral/bench-clients) on the
first run; nothing they need enters Corral's dependencies. Results: bench/results/client.json.

    .venv/bin/python bench/client.py            # full size
    .venv/bin/python bench/client.py --quick    # 200 nodes, 1,600 pods, 300 patches
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".corral" / "bench-clients"
PAGE = 500
CLIENTS = [
    "corral",
    "kubernetes_asyncio",
    "kubernetes_asyncio(raw)",
    "lightkube",
    "kr8s",
    "kr8s(raw)",
]
PACKAGES = ["lightkube", "kr8s", "kubernetes_asyncio"]


# -- realistic objects ---------------------------------------------------------------------------


def managed_fields(manager: str, operation: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "time": "2026-11-30T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


def node(i: int) -> dict[str, Any]:
    name = f"gpu-{i:05d}"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "p5.48xlarge",
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": f"us-east-1{'abc'[i % 3]}",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.memory": "81559",
        "nvidia.com/cuda.driver.major": "550",
        "network.corral.dev/block": f"b{i // 256}",
        "network.corral.dev/rack": f"r{i // 16}",
        "karpenter.sh/capacity-type": "spot" if i % 4 == 0 else "on-demand",
        "karpenter.sh/nodepool": "gpu",
        "feature.node.kubernetes.io/cpu-model.vendor_id": "Intel",
        "feature.node.kubernetes.io/kernel-version.full": "6.1.0-27-cloud-amd64",
    }
    images = [
        {
            "names": [
                f"registry.example.com/ml/image-{k}@sha256:{(i * 31 + k):064x}",
                f"registry.example.com/ml/image-{k}:v{k}.{i % 7}",
            ],
            "sizeBytes": 1_000_000_000 + k * 7919,
        }
        for k in range(30)
    ]
    condition_types = [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
        "NetworkUnavailable",
    ]
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": f"{i:08x}-0000-4000-8000-{i:012x}",
            "resourceVersion": str(100_000 + i),
            "creationTimestamp": "2026-11-01T00:00:00Z",
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "csi.volume.kubernetes.io/nodeid": json.dumps({"ebs.csi.aws.com": f"i-{i:017x}"}),
                "kwok.x-k8s.io/node": "fake",
            },
            "managedFields": [
                managed_fields(
                    "kubelet",
                    "Update",
                    {"f:metadata": {"f:labels": {f"f:{k}": {} for k in labels}}},
                ),
                managed_fields(
                    "kubelet",
                    "Update",
                    {
                        "f:status": {
                            "f:conditions": {f'k:{{"type":"{t}"}}': {} for t in condition_types}
                        }
                    },
                ),
                managed_fields("kube-controller-manager", "Update", {"f:spec": {"f:podCIDR": {}}}),
            ],
        },
        "spec": {
            "podCIDR": f"10.{i // 256}.{i % 256}.0/24",
            "providerID": f"aws:///us-east-1a/i-{i:017x}",
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
        "status": {
            "capacity": {
                "cpu": "192",
                "memory": "2097152Mi",
                "nvidia.com/gpu": "8",
                "pods": "110",
                "ephemeral-storage": "3800Gi",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "vpc.amazonaws.com/efa": "32",
            },
            "allocatable": {
                "cpu": "191450m",
                "memory": "2000000Mi",
                "nvidia.com/gpu": "8",
                "pods": "110",
                "ephemeral-storage": "3500Gi",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "vpc.amazonaws.com/efa": "32",
            },
            "conditions": [
                {
                    "type": t,
                    "status": "True" if t == "Ready" else "False",
                    "lastHeartbeatTime": "2026-11-30T10:00:00Z",
                    "lastTransitionTime": "2026-11-01T00:00:00Z",
                    "reason": f"Kubelet{t}",
                    "message": f"kubelet reports {t} as expected",
                }
                for t in condition_types
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.1.{i // 256}.{i % 256}"},
                {"type": "Hostname", "address": name},
                {"type": "InternalDNS", "address": f"{name}.ec2.internal"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"{i:032x}",
                "systemUUID": f"{i:032x}",
                "bootID": f"{i:032x}",
                "kernelVersion": "6.1.0-27-cloud-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": "v1.36.3",
                "kubeProxyVersion": "v1.36.3",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": images,
        },
    }


def pod(i: int) -> dict[str, Any]:
    name = f"job-{i // 8:05d}-w{i % 8}-a0"
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": f"team-{i % 20}",
            "uid": f"{i:08x}-1111-4000-8000-{i:012x}",
            "resourceVersion": str(200_000 + i),
            "creationTimestamp": "2026-11-30T09:00:00Z",
            "labels": {
                "corral.dev/job": f"job-{i // 8:05d}",
                "corral.dev/worker-index": str(i % 8),
                "corral.dev/restart-attempt": "0",
                "app.kubernetes.io/managed-by": "corral",
            },
            "annotations": {"corral.dev/node": f"gpu-{i // 8:05d}"},
            "ownerReferences": [
                {
                    "apiVersion": "corral.dev/v1alpha1",
                    "kind": "TrainingJob",
                    "name": f"job-{i // 8:05d}",
                    "uid": f"{i // 8:08x}-2222-4000-8000-000000000000",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                managed_fields(
                    "corral",
                    "Update",
                    {"f:metadata": {"f:labels": {}, "f:ownerReferences": {}}, "f:spec": {}},
                ),
                managed_fields(
                    "kubelet",
                    "Update",
                    {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:podIP": {}}},
                ),
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "trainer",
                    "image": "registry.example.com/ml/trainer:v3",
                    "command": ["torchrun"],
                    "args": ["--nnodes=8", "--nproc-per-node=8", "train.py"],
                    "env": [{"name": f"VAR_{k}", "value": f"value-{k}"} for k in range(10)],
                    "resources": {
                        "limits": {"nvidia.com/gpu": "8"},
                        "requests": {"cpu": "180", "memory": "1800Gi", "nvidia.com/gpu": "8"},
                    },
                    "volumeMounts": [
                        {"name": "shm", "mountPath": "/dev/shm"},
                        {"name": "data", "mountPath": "/data", "readOnly": True},
                        {
                            "name": "kube-api-access",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        },
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "volumes": [
                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "datasets"}},
                {
                    "name": "kube-api-access",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
                        ]
                    },
                },
            ],
            "nodeName": f"gpu-{i // 8:05d}",
            "restartPolicy": "Never",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": True,
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": "2026-11-30T09:00:05Z"}
                for t in [
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                ]
            ],
            "hostIP": f"10.1.{i // 2048}.{(i // 8) % 256}",
            "podIP": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}",
            "podIPs": [{"ip": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}"}],
            "startTime": "2026-11-30T09:00:01Z",
            "containerStatuses": [
                {
                    "name": "trainer",
                    "state": {"running": {"startedAt": "2026-11-30T09:00:04Z"}},
                    "ready": True,
                    "restartCount": 0,
                    "image": "registry.example.com/ml/trainer:v3",
                    "imageID": f"registry.example.com/ml/trainer@sha256:{i:064x}",
                    "containerID": f"containerd://{i:064x}",
                    "started": True,
                }
            ],
            "qosClass": "Burstable",
        },
    }


# -- the canned API server (its own process) ----------------------------------------------------


def serve(port: int, nodes: int, pods: int, ready: Any) -> None:
    from aiohttp import web

    def pages(kind: str, items: list[dict[str, Any]]) -> list[bytes]:
        out = []
        for start in range(0, len(items), PAGE):
            meta: dict[str, Any] = {"resourceVersion": "999999"}
            if start + PAGE < len(items):
                meta["continue"] = str(start + PAGE)
            out.append(
                json.dumps(
                    {
                        "kind": f"{kind}List",
                        "apiVersion": "v1",
                        "metadata": meta,
                        "items": items[start : start + PAGE],
                    }
                ).encode()
            )
        return out

    node_items = [node(i) for i in range(nodes)]
    pod_items = [pod(i) for i in range(pods)]
    listed = {
        "/api/v1/nodes": (node_items, pages("Node", node_items)),
        "/api/v1/pods": (pod_items, pages("Pod", pod_items)),
    }
    patched = json.dumps(pod_items[0]).encode()
    discovery = json.dumps(
        {
            "kind": "APIResourceList",
            "groupVersion": "v1",
            "resources": [
                {
                    "name": "nodes",
                    "singularName": "node",
                    "namespaced": False,
                    "kind": "Node",
                    "verbs": ["get", "list", "patch"],
                },
                {
                    "name": "pods",
                    "singularName": "pod",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["get", "list", "patch"],
                },
            ],
        }
    ).encode()

    async def listing(request: web.Request) -> web.Response:
        items, encoded = listed[request.path]
        limit = int(request.query.get("limit") or 0)
        start = int(request.query.get("continue") or 0)
        if limit == PAGE and start % PAGE == 0:
            body = encoded[start // PAGE]
        else:  # another page size (kr8s uses 100) or everything at once
            end = start + limit if limit else len(items)
            meta: dict[str, Any] = {"resourceVersion": "999999"}
            if end < len(items):
                meta["continue"] = str(end)
            body = json.dumps(
                {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": items[start:end]}
            ).encode()
        return web.Response(body=body, content_type="application/json")

    async def patch(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=patched, content_type="application/json")

    async def static(request: web.Request) -> web.Response:
        path = request.path.rstrip("/")
        if path == "/version":
            return web.json_response({"major": "1", "minor": "36", "gitVersion": "v1.36.3"})
        if path == "/api/v1":
            return web.Response(body=discovery, content_type="application/json")
        if path == "/api":
            return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    app = web.Application(client_max_size=1 << 24)
    app.router.add_get("/api/v1/nodes", listing)
    app.router.add_get("/api/v1/pods", listing)
    app.router.add_patch("/api/v1/namespaces/{ns}/pods/{name}", patch)
    app.router.add_get("/{tail:.*}", static)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- one client, in its own process ---------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def child(
    name: str, url: str, patches: int, concurrency: int, kubeconfig: str, lists: int
) -> dict[str, Any]:
    started = time.perf_counter()
    list_all, patch_one, close = await client_for(name, url, kubeconfig)
    imported = rss_mib()
    import_seconds = time.perf_counter() - started
    times: list[float] = []
    held: Any = None
    counts = (0, 0)
    for _ in range(lists):
        held = None
        begin = time.perf_counter()
        nodes, pods = await list_all()
        times.append(time.perf_counter() - begin)
        held, counts = (nodes, pods), (len(nodes), len(pods))
    holding = rss_mib()
    semaphore = asyncio.Semaphore(concurrency)

    async def one(k: int) -> None:
        async with semaphore:
            await patch_one(k)

    begin = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(patches)))
    patch_seconds = time.perf_counter() - begin
    await close()
    del held
    return {
        "client": name,
        "listed": {"nodes": counts[0], "pods": counts[1]},
        "list_seconds_median": statistics.median(times),
        "list_seconds": times,
        "setup_seconds": import_seconds,
        "rss_mib_after_import": round(imported, 1),
        "rss_mib_holding_lists": round(holding, 1),
        "rss_mib_peak": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "patches_per_second": patches / patch_seconds,
    }


async def client_for(name: str, url: str, kubeconfig: str) -> tuple[Any, Any, Any]:
    body = {"metadata": {"labels": {"bench": "1"}}}
    pod_path = "/api/v1/namespaces/team-0/pods/job-00000-w0-a0"
    if name == "corral":
        from corral.kube.rest import KubeAPI

        api = KubeAPI(url, token="bench")

        async def list_all() -> tuple[list[Any], list[Any]]:
            return (await api.list("/api/v1/nodes"))[0], (await api.list("/api/v1/pods"))[0]

        async def patch_one(k: int) -> None:
            await api.patch(pod_path, body)

        return list_all, patch_one, api.close
    if name.startswith("kubernetes_asyncio"):
        from kubernetes_asyncio import client

        configuration = client.Configuration(host=url)
        configuration.api_key = {"authorization": "Bearer bench"}
        configuration.connection_pool_maxsize = 32
        api_client = client.ApiClient(configuration)
        core = client.CoreV1Api(api_client)
        raw = name.endswith("(raw)")

        async def paged(call: Any) -> list[Any]:
            items: list[Any] = []
            token = None
            while True:
                kwargs = {"limit": PAGE, **({"_continue": token} if token else {})}
                if raw:
                    response = await call(_preload_content=False, **kwargs)
                    page = json.loads(await response.read())
                    items.extend(page["items"])
                    token = page["metadata"].get("continue")
                else:
                    page = await call(**kwargs)
                    items.extend(page.items)
                    token = page.metadata._continue
                if not token:
                    return items

        async def list_all() -> tuple[list[Any], list[Any]]:
            return await paged(core.list_node), await paged(core.list_pod_for_all_namespaces)

        async def patch_one(k: int) -> None:
            if raw:
                response = await core.patch_namespaced_pod(
                    "job-00000-w0-a0", "team-0", body, _preload_content=False
                )
                json.loads(await response.read())
            else:
                await core.patch_namespaced_pod("job-00000-w0-a0", "team-0", body)

        return list_all, patch_one, api_client.close
    if name == "lightkube":
        from lightkube import AsyncClient, KubeConfig
        from lightkube.resources.core_v1 import Node, Pod
        from lightkube.types import PatchType

        config = KubeConfig.from_file(kubeconfig)
        lk = AsyncClient(config=config)

        async def list_all() -> tuple[list[Any], list[Any]]:
            nodes = [n async for n in lk.list(Node, chunk_size=PAGE)]
            pods = [p async for p in lk.list(Pod, namespace="*", chunk_size=PAGE)]
            return nodes, pods

        async def patch_one(k: int) -> None:
            await lk.patch(
                Pod, "job-00000-w0-a0", body, namespace="team-0", patch_type=PatchType.MERGE
            )

        return list_all, patch_one, lk.close
    if name.startswith("kr8s"):
        import kr8s.asyncio

        api = await kr8s.asyncio.api(kubeconfig=kubeconfig)
        raw = name.endswith("(raw)")

        async def list_all() -> tuple[list[Any], list[Any]]:
            nodes = [n async for n in api.get("nodes", raw=raw)]
            pods = [p async for p in api.get("pods", namespace=kr8s.ALL, raw=raw)]
            return nodes, pods

        async def patch_one(k: int) -> None:
            # kr8s's lowest level (an APIObject's patch() costs more: it builds the object).
            async with api.call_api(
                "PATCH",
                version="v1",
                url="pods/job-00000-w0-a0",
                namespace="team-0",
                content=json.dumps(body),
                headers={"Content-Type": "application/merge-patch+json"},
            ) as response:
                response.json()

        async def close() -> None:
            return None

        return list_all, patch_one, close
    raise SystemExit(f"unknown client {name}")


# -- the driver -----------------------------------------------------------------------------------


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"installing {', '.join(PACKAGES)} into {VENV} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-e", str(REPO), *PACKAGES], check=True
        )
    return python


def versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        f"{['aiohttp', 'httpx', *PACKAGES]!r}}}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, str] = json.loads(out.stdout)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--pods", type=int, default=16000)
    parser.add_argument("--patches", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each client (medians)")
    parser.add_argument("--lists", type=int, default=2, help="LISTs per run (median)")
    parser.add_argument("--quick", action="store_true", help="200 nodes, 1,600 pods, 300 patches")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "client.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.pods, args.patches, args.rounds = 200, 1600, 300, 1
    if args.child:
        result = asyncio.run(
            child(args.child, args.url, args.patches, args.concurrency, args.kubeconfig, args.lists)
        )
        print(json.dumps(result))
        return 0

    python = ensure_venv()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ready = multiprocessing.get_context("spawn").Event()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(port, args.nodes, args.pods, ready), daemon=True
    )
    server.start()
    try:
        if not ready.wait(120):
            raise SystemExit("the canned API server did not start")
        with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False) as config:
            config.write(
                json.dumps(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "current-context": "bench",
                        "clusters": [{"name": "bench", "cluster": {"server": url}}],
                        "users": [{"name": "bench", "user": {"token": "bench"}}],
                        "contexts": [
                            {"name": "bench", "context": {"cluster": "bench", "user": "bench"}}
                        ],
                    }
                )
            )
        time.sleep(0.5)  # run_app binds after `ready`; the first client retries anyway
        names = args.clients.split(",")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            # Each round in another order: no client always runs first (or after the same one).
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                print(f"round {round_ + 1}: {name} ...", flush=True)
                runs[name].append(run_child(python, name, url, config.name, args))
        results = [combine(name, runs[name]) for name in names]
    finally:
        server.terminate()
        server.join(10)
    report(results, args, versions(python))
    return 0


def run_child(
    python: Path, name: str, url: str, kubeconfig: str, args: argparse.Namespace
) -> dict[str, Any]:
    out = subprocess.run(
        [
            str(python),
            __file__,
            "--child",
            name,
            "--url",
            url,
            "--kubeconfig",
            kubeconfig,
            "--patches",
            str(args.patches),
            "--concurrency",
            str(args.concurrency),
            "--lists",
            str(args.lists),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if out.returncode != 0:
        print(f"  {name} failed:\n{out.stderr[-2000:]}")
        return {"client": name, "error": out.stderr[-2000:]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def combine(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds (memory: the largest seen)."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    return {
        "client": name,
        "rounds": len(good),
        "listed": good[0]["listed"],
        "list_seconds_median": statistics.median(r["list_seconds_median"] for r in good),
        "patches_per_second": statistics.median(r["patches_per_second"] for r in good),
        "setup_seconds": statistics.median(r["setup_seconds"] for r in good),
        "rss_mib_after_import": max(r["rss_mib_after_import"] for r in good),
        "rss_mib_holding_lists": max(r["rss_mib_holding_lists"] for r in good),
        "rss_mib_peak": max(r["rss_mib_peak"] for r in good),
        "runs": good,
    }


def report(results: list[dict[str, Any]], args: argparse.Namespace, pinned: dict[str, str]) -> None:
    base = next((r for r in results if r["client"] == "corral" and "error" not in r), None)
    print(
        f"\nLIST {args.nodes} nodes + {args.pods} pods (medians of {args.lists} lists x {args.rounds} rounds), "
        f"{args.patches} merge PATCHes "
        f"at concurrency {args.concurrency}; canned API server on 127.0.0.1 (own process)\n"
    )
    header = f"{'client':<26}{'list s':>8}{'x corral':>10}{'RSS import':>12}{'RSS held':>10}{'peak':>8}{'patch/s':>9}{'x corral':>10}"
    print(header)
    for r in results:
        if "error" in r:
            print(f"{r['client']:<26} failed")
            continue
        ratio_list = (
            r["list_seconds_median"] / base["list_seconds_median"] if base else float("nan")
        )
        ratio_patch = r["patches_per_second"] / base["patches_per_second"] if base else float("nan")
        r["list_ratio_vs_corral"] = ratio_list
        r["patch_ratio_vs_corral"] = ratio_patch
        print(
            f"{r['client']:<26}{r['list_seconds_median']:>8.2f}{ratio_list:>10.2f}"
            f"{r['rss_mib_after_import']:>12.0f}{r['rss_mib_holding_lists']:>10.0f}{r['rss_mib_peak']:>8.0f}"
            f"{r['patches_per_second']:>9.0f}{ratio_patch:>10.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "nodes": args.nodes,
                "pods": args.pods,
                "patches": args.patches,
                "concurrency": args.concurrency,
                "versions": pinned,
                "results": results,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
