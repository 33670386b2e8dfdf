#!/usr/bin/env bash
# `make e2e-kind`: Corral's image and chart on a kind cluster, then the e2e suite against it.
# For machines with Docker; this project's CI has no container engine and cannot run it.
#
#   1. kind (go install, pinned) creates the cluster `corral-e2e` (kept: delete it with
#      `.corral/kind/bin/kind delete cluster --name corral-e2e`).
#   2. docker builds the image from ./Dockerfile; kind loads it into the nodes (never pulled).
#   3. kwok runs in the cluster for the suite's simulated GPU nodes (it manages only Nodes
#      annotated kwok.x-k8s.io/node=fake; the kind nodes stay real), with the local fleet's
#      Stages, and the tiny fleet's nodes are created.
#   4. helm installs the chart with that image and waits for the rollout: the real image runs.
#   5. The in-cluster operator places the sample gang (examples/) on the fleet.
#   6. The operator is scaled to zero — the suite starts its own operators and two would both
#      decide — and the suite runs with CORRAL_KUBECONFIG (arguments replace the default `e2e`).
set -euo pipefail
cd "$(dirname "$0")/../.."

KIND_VERSION=v0.33.0
CLUSTER=${KIND_CLUSTER:-corral-e2e}
IMAGE_REPOSITORY=localhost/corral
IMAGE_TAG=e2e
WORK=$PWD/.corral/kind
BIN=$PWD/.venv/bin
HELM=$("$BIN/corral" fleet binaries --which helm)
KUBECTL=$("$BIN/corral" fleet binaries --which kubectl)
KWOK_VERSION=$("$BIN/python" -c 'from corral.localfleet import versions; print(versions.KWOK)')
step() { printf '\n== %s\n' "$*" >&2; }

command -v docker >/dev/null || { echo "make e2e-kind needs Docker (docker build, kind)" >&2; exit 1; }
mkdir -p "$WORK/bin"
GOBIN=$WORK/bin go install "sigs.k8s.io/kind@$KIND_VERSION"
KIND=$WORK/bin/kind

step "1. kind cluster $CLUSTER"
"$KIND" get clusters | grep -qx "$CLUSTER" || "$KIND" create cluster --name "$CLUSTER" --wait 180s
"$KIND" get kubeconfig --name "$CLUSTER" > "$WORK/kubeconfig"
export KUBECONFIG=$WORK/kubeconfig

step "2. image $IMAGE_REPOSITORY:$IMAGE_TAG"
docker build -t "$IMAGE_REPOSITORY:$IMAGE_TAG" .
"$KIND" load docker-image "$IMAGE_REPOSITORY:$IMAGE_TAG" --name "$CLUSTER"

step "3. kwok $KWOK_VERSION in the cluster, its Stages, the tiny fleet's nodes"
"$KUBECTL" apply -f "https://github.com/kubernetes-sigs/kwok/releases/download/$KWOK_VERSION/kwok.yaml"
"$KUBECTL" -n kube-system rollout status deploy/kwok-controller --timeout=180s
"$BIN/python" -c 'from corral.localfleet import stages; print("\n---\n".join(stages.ALL))' \
  | "$KUBECTL" apply -f -
# `create`, not `apply`: a Node's status (its GPUs) is kept only on creation.
if [ -z "$("$KUBECTL" get nodes -l sim.corral.dev/fleet=tiny -o name)" ]; then
  "$BIN/corral" fleet nodes --fleet e2e/fleets/tiny.yaml | "$KUBECTL" create -f -
fi
"$KUBECTL" wait node -l sim.corral.dev/fleet=tiny --for=condition=Ready --timeout=120s

step "4. helm install charts/corral with the image"
"$HELM" upgrade --install corral charts/corral --namespace corral-system --create-namespace \
  --set image.repository=$IMAGE_REPOSITORY --set image.tag=$IMAGE_TAG --set image.pullPolicy=Never \
  --wait --timeout 180s

step "5. the in-cluster operator places the sample gang"
"$KUBECTL" apply -f examples/gpupool-h100.yaml -f examples/trainingjob-finetune.yaml
"$KUBECTL" wait trainingjob/finetune -n default --for=jsonpath='{.status.phase}'=Running --timeout=120s
"$KUBECTL" get gpupools,trainingjobs -A -o wide
"$KUBECTL" delete -f examples/trainingjob-finetune.yaml -f examples/gpupool-h100.yaml --wait

step "6. the e2e suite (the in-cluster operator steps aside)"
"$KUBECTL" -n corral-system scale deploy/corral --replicas=0
"$KUBECTL" -n corral-system wait pod -l app.kubernetes.io/instance=corral --for=delete --timeout=120s
CORRAL_KUBECONFIG=$KUBECONFIG "$BIN/pytest" -q "${@:-e2e}"
