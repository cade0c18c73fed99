# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all validate bench fuzz reliability clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/opioidsim run acute-heroin-iv --out out/demo --subjects 20 --seed 1 --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every validation target at full size (slow tests included).
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

validate: $(STAMP)
	$(BIN)/opioidsim validate

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_acute.py

# Issue 9: 10,000 fuzzed inputs (scenario files, API calls, command lines); prints the figures.
fuzz: $(STAMP)
	$(BIN)/python -m opioidsim.fuzz --cases 10000 --json out/reliability/fuzz.json

# Issue 9: 10,000 random-physiology subjects, engine error against the Radau reference on a
# sample of them; prints the figures that RELIABILITY.md reports (about an hour on 2 cores).
reliability: $(STAMP)
	$(BIN)/python -m opioidsim.reliability --subjects 10000 --reference 40 --json out/reliability/physiology.json

clean:
	rm -rf $(VENV) out .pytest_cache
