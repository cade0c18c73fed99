# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all validate bench fuzz reliability docs clean

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

# Issue 8: the documentation site, built into site/ (open site/index.html). Pages generated from the
# code go to docs/generated/ (model modules, parameters, readouts, scenarios, executed tutorials),
# then mkdocs builds. The validation page reads out/validation.json when it exists (full-size
# results: `.venv/bin/opioidsim validate --json > out/validation.json`), else simulates every
# target in its reduced form here (about 5 minutes on 2 cores); DOCS_VALIDATION=list skips them.
DOCS_STAMP := $(VENV)/.docs-installed
DOCS_VALIDATION ?= $(if $(wildcard out/validation.json),out/validation.json,run)

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/python -m opioidsim.docs --out docs/generated --validation $(DOCS_VALIDATION) --tutorials docs/tutorials_src
	$(BIN)/mkdocs build --strict
	@echo "documentation site written to site/ (open site/index.html)"

clean:
	rm -rf $(VENV) out .pytest_cache site docs/generated
