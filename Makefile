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

# Two workers, a test file each at a time (the real-process tests share no port or state);
# the browser tests after them, alone (Playwright's sync API keeps an event loop running in
# its worker, which the asyncio tests after it cannot share). pytest exits 5 when it collected
# no test: that is a failure here.
test: setup-test
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --ignore=tests/ui; first=$$?; \
	$(BIN)/python -m pytest -q tests/ui; second=$$?; \
	for status in $$first $$second; do \
	  if [ $$status -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; \
	  if [ $$status -ne 0 ]; then exit $$status; fi; \
	done

# Every benchmark; writes bench/results.json and the tables of BENCHMARKS.md. The CLI rows of
# the hook benchmark run memlane as users install it (`pip install .`: no editable finder).
PLAIN ?= .venv-bench
bench: setup-test
	$(PYTHON) -m venv $(PLAIN)
	rm -rf build  # setuptools would ship modules a stale build/ still holds
	$(PLAIN)/bin/python -m pip install --quiet .
	$(BIN)/python -m bench.run_all --memlane $(CURDIR)/$(PLAIN)/bin/memlane

clean:
	rm -rf $(VENV) $(PLAIN) $(DEMO_HOME) build *.egg-info
