# One command sets up and runs each job. The virtual environment is built on first use with a Python >= 3.12
# found by tools/find-python, and rebuilt when pyproject.toml changes.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run project test test-fast bench bench-sweep bench-project clean chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || { py=$$(sh tools/find-python) && echo "creating $(VENV) with $$py" && $$py -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(VENV)/bin/odsim run

project: setup
	$(VENV)/bin/odsim project

test: setup chromium
	ODSIM_CHROMIUM=$(CHROMIUM) $(PY) -m pytest

# The edit loop, under a minute: everything but the tests marked slow (over about a second: calibration,
# projections, sweeps, Dask clusters, the browser, fault injection, command-line start-ups).
test-fast: setup
	$(PY) -m pytest -m "not slow" -q

# The browser test (tests/test_viz_browser.py) drives Debian's Chromium; install it when missing and apt-get is
# available (as root, or through sudo). Elsewhere say how to provide it: the test then skips, except in CI.
CHROMIUM ?= /usr/bin/chromium
APT := $(shell [ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive apt-get
chromium:
	@test -x $(CHROMIUM) || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium package for the browser test"; \
	    $(APT) install -y -q chromium || { $(APT) update -q && $(APT) install -y -q chromium; } || \
	      echo "WARNING: could not install chromium with apt-get; the browser test will not run" >&2; \
	  else \
	    echo "NOTE: the browser test needs Chromium at $(CHROMIUM) and apt-get is not available here." >&2; \
	    echo "      Install Chromium with your package manager and run: make test CHROMIUM=/path/to/chromium" >&2; \
	    echo "      (without it the browser test is skipped; in CI, where CI=true, it fails)." >&2; \
	  fi; }

bench: setup
	$(PY) benchmarks/bench_model.py

bench-sweep: setup
	$(PY) benchmarks/bench_sweep.py

bench-project: setup
	$(PY) benchmarks/bench_projection_noise.py
	$(PY) benchmarks/bench_projection_suite.py
	$(PY) benchmarks/bench_projection_branching.py

clean:
	rm -rf $(VENV)
