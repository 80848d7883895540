# The two commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_HOME ?= $(CURDIR)/.memlane-demo

.PHONY: demo test setup setup-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

setup-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

demo: setup
	MEMLANE_HOME=$(DEMO_HOME) MEMLANE_PORT=0 bash bench/demo.sh $(BIN)/memlane

# pytest exits 5 when it collected no test: that is a failure here.
test: setup-test
	$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$status

# Every benchmark; writes bench/results.json and the tables of BENCHMARKS.md.
bench: setup-test
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) $(DEMO_HOME) build *.egg-info
