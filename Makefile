# Corral's verbs. Each one does its own set-up, so on a fresh machine `make dev` and
# `make test` are the whole set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install crds lint test e2e bench dev chart clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

crds: install
	$(BIN)/corral crds --out crds
	$(BIN)/corral crds --out charts/corral/crds

lint: install
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install
	$(BIN)/pytest -q tests

# The e2e suite: a real control plane (built once into ~/.cache/corral/bin/<k8s-version>/)
# with a simulated GPU fleet. It FAILS when the control plane cannot start; it never skips.
# CORRAL_KUBECONFIG=<file> runs it against another cluster; CORRAL_E2E_FLEET picks the fleet.
e2e: install binaries
	$(BIN)/pytest -q e2e

.PHONY: binaries dev-down
# Find or build kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok, kwokctl,
# kubectl and helm (idempotent: a warm cache costs well under a second).
binaries: install
	$(BIN)/corral fleet binaries

bench: install
	@echo "make bench: benchmarks (issue 4) are not built yet." >&2; exit 1

# The demo: the demo fleet (64 simulated 8-GPU hosts), Corral's CRDs and samples, and the
# operator in the foreground. Ctrl-C stops the operator; `make dev-down` stops the fleet.
DEV_KUBECONFIG := .corral/demo/kubeconfig
DEV_KUBECTL = KUBECONFIG=$(DEV_KUBECONFIG) "$$($(BIN)/corral fleet binaries --which kubectl)"
dev: install binaries
	$(BIN)/corral fleet up --fleet e2e/fleets/demo.yaml --name demo
	$(DEV_KUBECTL) apply -f crds/
	$(DEV_KUBECTL) wait --for condition=established --timeout=60s -f crds/
	$(DEV_KUBECTL) apply -f examples/
	$(DEV_KUBECTL) get nodes -L nvidia.com/gpu.product,network.corral.dev/rack,karpenter.sh/capacity-type
	$(DEV_KUBECTL) get gpupools,trainingjobs,inferenceservices -A
	@echo "export KUBECONFIG=$(CURDIR)/$(DEV_KUBECONFIG)   # to use kubectl on the demo fleet"
	KUBECONFIG=$(DEV_KUBECONFIG) $(BIN)/corral run

dev-down: install
	$(BIN)/corral fleet down --name demo

chart: install
	@echo "make chart: the Helm chart is not built yet." >&2; exit 1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
