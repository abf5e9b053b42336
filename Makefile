# One command sets up and runs each job. The virtual environment is built on first use with a Python >= 3.12
# found by tools/find-python, and rebuilt when pyproject.toml changes.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run project test bench bench-project clean

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

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/bench_model.py

bench-project: setup
	$(PY) benchmarks/bench_projection_noise.py
	$(PY) benchmarks/bench_projection_suite.py

clean:
	rm -rf $(VENV)
