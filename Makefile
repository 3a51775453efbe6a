# Every target creates and uses .venv. `make demo` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-output
PYTEST_ARGS ?=

.PHONY: install test lint demo bench clean render validate-stats format

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip check
	bash scripts/provision.sh
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check jetstream tests workflows benchmarks
	$(BIN)/ruff format --check jetstream tests workflows benchmarks
	$(BIN)/mypy jetstream

format: install
	$(BIN)/ruff format jetstream tests workflows benchmarks
	$(BIN)/ruff check --fix jetstream tests workflows benchmarks

demo: install
	$(BIN)/python -m jetstream.synthetic.demo --out $(DEMO_DIR)

bench: install
	$(BIN)/python -m benchmarks.run

render: install
	$(BIN)/python -m workflows.render

validate-stats: install
	$(BIN)/python -m benchmarks.calibration --out docs/statistics-validation.md

clean:
	rm -rf $(VENV) $(DEMO_DIR) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
