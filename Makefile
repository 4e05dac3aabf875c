# The two set-up commands (see README): `make demo` and `make test`.
# Needs Python 3.11, Java 17 and Maven on the machine; everything else is installed here.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow unit lint kafka-jars clean

$(BIN)/mash: pyproject.toml
	@echo "make: installing the Python environment in $(VENV) ..."
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; install Python 3.11 or set PYTHON=" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

kafka-jars: $(BIN)/mash
	$(BIN)/mash kafka fetch

## The whole pipeline on the embedded stack, over the shipped samples (MASH_DEMO_EXIT=1 to exit).
demo: kafka-jars
	$(BIN)/mash demo

## Lint, type-check, then every test: unit, and integration against a real Kafka broker.
test: kafka-jars lint
	$(BIN)/pytest

## The fault tests: workers killed and rebalanced mid-stream, repeated (about 10 minutes).
test-slow: kafka-jars
	$(BIN)/pytest -m slow -s

unit: $(BIN)/mash
	$(BIN)/pytest tests/unit

lint: $(BIN)/mash
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mash infra/kafka/lib infra/kafka/target
