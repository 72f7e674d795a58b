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
comma := ,

.PHONY: setup demo full test test-heavy bench clean

setup: $(STAMP)

# The project itself is installed editable (pyproject.toml: `import common` from anywhere), and
# one .pth file puts the four lesson folders on sys.path -- the one place the suite extends it.
# Appended after site-packages: the folders tensorflow/, keras/ and chainer/ are never on the
# path themselves (only their contents, whose module names are unique: torch_*, tf_*, keras_*,
# chainer_*), so they cannot shadow the installed packages.
LESSON_FOLDERS := pytorch tensorflow keras chainer

$(STAMP): requirements/*.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/$(REQS).txt -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'semseg-lessons.pth').write_text(''.join(f'$(CURDIR)/{d}\\n' for d in '$(LESSON_FOLDERS)'.split()))"
	touch $@

demo: setup
	$(PY) compare.py --quick

# The exercise's schedule, three seeds and the noise floor (compare.py's docstring); one seed,
# as before: make full SEEDS=0
SEEDS ?= 0,1,2
full: setup
	$(PY) compare.py --seeds $(SEEDS) $(if $(findstring $(comma),$(SEEDS)),--noise-floor,)

# TensorFlow's CPU kernels come from oneDNN or from its own code, by default depending on the
# processor (TF_ENABLE_ONEDNN_OPTS). The suite runs with oneDNN off (most laptops) unless
# TF_ENABLE_ONEDNN_OPTS=1 is given, then the TensorFlow and Keras float32 parity tests (every
# step's forward pass in both BatchNorm modes, gradients and one SGD step: where a kernel is
# missing or rounds otherwise, e.g. the filter gradient of a dilated conv without oneDNN) and the
# determinism test run again with the other setting, so both are tested on every machine. The
# dry runs are not repeated: they add the runner and the outputs, which no kernel changes. The
# float64 parity tests run once: TensorFlow runs float64 on its own kernels either way
# (measured: the float64 probes of 02_multiclass and 09_deeplabv3plus are bit-identical with
# oneDNN on and off).
ONEDNN       := $(if $(filter 1,$(TF_ENABLE_ONEDNN_OPTS)),1,0)
OTHER_ONEDNN := $(if $(filter 1,$(ONEDNN)),0,1)

test: setup
	TF_ENABLE_ONEDNN_OPTS=$(ONEDNN) $(VENV)/bin/pytest $(PYTEST_ARGS)
	TF_ENABLE_ONEDNN_OPTS=$(OTHER_ONEDNN) $(VENV)/bin/pytest -m tf_kernels -k "not float64" tests/test_parity.py tests/test_steps.py::test_same_seed_same_loss_curve $(PYTEST_ARGS)

# Measurements too long for CI (tests marked heavy, e.g. UNet vs the plain network at 1000
# iterations, ~6 min on 2 cores).
test-heavy: setup
	TF_ENABLE_ONEDNN_OPTS=$(ONEDNN) $(VENV)/bin/pytest -m heavy $(PYTEST_ARGS)

bench: setup
	$(PY) tools/benchmark.py

clean:
	rm -rf runs data .pytest_cache
