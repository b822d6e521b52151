# Every target runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-unit broker-start broker-stop broker-status demo faults bench clean

$(STAMP): setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,example]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -ra -m 'not kafka and not cluster' $(PYTEST_ARGS)

# The example services on a local broker; DEMO_ARGS=--once exits after the chain.
demo: $(STAMP)
	$(BIN)/python -m example_app.demo $(DEMO_ARGS)

broker-start: $(STAMP)
	$(BIN)/python -m flask_hyper.devbroker start

broker-stop: $(STAMP)
	$(BIN)/python -m flask_hyper.devbroker stop

broker-status: $(STAMP)
	$(BIN)/python -m flask_hyper.devbroker status

faults: $(STAMP)
	$(BIN)/python -m faults.run $(FAULTS_ARGS)

# Benchmarks against the raw clients and FastStream; BENCH_QUICK=1 for smaller runs.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	BENCH_QUICK=$(BENCH_QUICK) $(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
