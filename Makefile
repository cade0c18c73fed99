# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all validate bench bench-explorer explore browser fuzz reliability docs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/opioidsim run acute-heroin-iv --out out/demo --subjects 20 --seed 1 --overwrite

# The explorer's browser tests drive Debian's chromium through Playwright (never `playwright
# install`, which downloads browsers from the internet): install the package where it is missing.
# Guarded: without apt-get as root (or passwordless sudo) it says so, and the browser tests fail
# with the same hint.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	[ -n "$$OPIOIDSIM_CHROMIUM" ] || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else SUDO=none; fi; \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$SUDO" != none ]; then \
	    echo "installing Debian's chromium for the explorer's browser tests"; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
	      || echo "warning: could not install chromium: the explorer's browser tests will fail"; \
	  else echo "warning: chromium is missing and cannot be installed here (apt-get as root): the explorer's browser tests will fail; install chromium or set OPIOIDSIM_CHROMIUM"; fi; }

# The validation targets run in a pytest process of their own: after the rest of the suite, XLA
# aborted the process twice at the same place (Fatal Python error: Aborted while serialising a fresh
# executable for the compilation cache, at V-D2-1); each part alone, and V-D2-1 after any one of
# the new test files, ran clean. A fresh process for the long validation runs avoids whatever the
# earlier tests leave behind in the process (threads, libraries, compiled programs).
test: $(STAMP) browser
	$(BIN)/python -m pytest -q --durations=25 --ignore=tests/test_validation.py
	$(BIN)/python -m pytest -q --durations=10 tests/test_validation.py

# Every validation target at full size (slow tests included).
test-all: $(STAMP) browser
	$(BIN)/python -m pytest -q -m "slow or not slow" --ignore=tests/test_validation.py
	$(BIN)/python -m pytest -q -m "slow or not slow" tests/test_validation.py

validate: $(STAMP)
	$(BIN)/opioidsim validate

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_acute.py

# Issue 8: how fast the explorer answers (cold, from the disk cache, warm; the chronic page too).
bench-explorer: $(STAMP)
	$(BIN)/python benchmarks/bench_explorer.py --chronic

# Issue 8: the interactive explorer at http://127.0.0.1:8765/ (Ctrl-C to stop).
explore: $(STAMP)
	$(BIN)/opioidsim explore

# Issue 9: 10,000 fuzzed inputs (scenario files, API calls, command lines); prints the figures.
fuzz: $(STAMP)
	$(BIN)/python -m opioidsim.fuzz --cases 10000 --json out/reliability/fuzz.json

# Issue 9: 10,000 random-physiology subjects, engine error against the Radau reference on a
# sample of them; prints the figures that RELIABILITY.md reports (about an hour on 2 cores).
reliability: $(STAMP)
	$(BIN)/python -m opioidsim.reliability --compressed --subjects 10000 --reference 40 --json out/reliability/physiology.json

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
	$(BIN)/python -m opioidsim.docs --out docs/generated --validation $(DOCS_VALIDATION) --tutorials docs/tutorials_src --guide docs/guide
	$(BIN)/mkdocs build --strict
	@echo "documentation site written to site/ (open site/index.html)"

clean:
	rm -rf $(VENV) out .pytest_cache site docs/generated
