# Two commands do everything on a fresh clone (see README):
#   make demo   set up .venv with all four frameworks, run the side-by-side comparison
#   make test   set up .venv, run the test suite
# Only one framework?  make setup REQS=pytorch   (or tensorflow, keras, chainer)

PYTHON ?= python3
VENV   ?= .venv
REQS   ?= all
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(REQS)
# Reaches pip's isolated build environments too (chainer's setup.py needs pkg_resources).
export PIP_CONSTRAINT := $(CURDIR)/requirements/constraints.txt
PYTEST_ARGS ?=

.PHONY: setup demo full test bench clean

setup: $(STAMP)

$(STAMP): requirements/*.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/$(REQS).txt -r requirements/dev.txt
	touch $@

demo: setup
	$(PY) compare.py --quick

full: setup
	$(PY) compare.py

test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup
	$(PY) benchmark.py

clean:
	rm -rf runs data .pytest_cache
