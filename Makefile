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

e2e: install
	@echo "make e2e: the local-fleet e2e suite (issue 3) is not built yet." >&2; exit 1

bench: install
	@echo "make bench: benchmarks (issue 4) are not built yet." >&2; exit 1

dev: install
	@echo "make dev: the local-fleet demo (issue 3) is not built yet." >&2; exit 1

chart: install
	@echo "make chart: the Helm chart is not built yet." >&2; exit 1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
