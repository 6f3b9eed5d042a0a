# The two commands of the README:
#   make demo   train and evaluate the method on the built-in phantom cohort
#   make test   run the test suite
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# What each target needs: the demo only the package, tests and docs the
# test extra (pytest, hypothesis, the docs tools, highdicom, dask).
STAMP_DEMO := $(VENV)/.installed-demo-$(HASH)
STAMP := $(VENV)/.installed-test-$(HASH)

.PHONY: demo test docs install clean

$(STAMP_DEMO): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	rm -f $(VENV)/.installed-demo-*
	touch $@

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	rm -f $(VENV)/.installed-test-*
	touch $@

install: $(STAMP)

demo: $(STAMP_DEMO)
	$(PY) -m pancreas demo -o demo_output

test: $(STAMP)
	KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m pytest

# The HTML documentation in docs/_build/html; runs every example of examples/
# (sphinx-gallery) and fails on any warning.
docs: $(STAMP)
	KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) demo_output .pytest_cache docs/_build docs/auto_examples docs/generated
