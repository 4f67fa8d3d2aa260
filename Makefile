PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

ZOO_VENV ?= .venv-zoo
ZOO_PY := $(ZOO_VENV)/bin/python
ZOO_STAMP := $(ZOO_VENV)/.installed

# NNCF compiles its INT8 C++ extension on first use; on a busy 2-core machine that can exceed its 60 s default.
export NNCF_EXTENSION_LOAD_TIMEOUT ?= 600

.PHONY: install test test-slow demo test-zoo lint format clean

$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m "not zoo and not slow" tests

# The CLI end to end on a tiny budget (pre-train, train, search, export, benchmark, stage commands): a few minutes.
test-slow: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m "slow and not zoo" tests

demo: $(STAMP)
	$(PY) -m nncf_bootstrapnas.cli.main run --config examples/configs/digits_resnet18.json --output-dir outputs/demo

# Real torchvision architectures: torchvision cannot import with the CPU torch 2.13 wheel, so a second environment.
$(ZOO_STAMP): setup.py
	test -x $(ZOO_PY) || $(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_PY) -m pip install -q --upgrade pip
	$(ZOO_PY) -m pip install -q torch==2.8.0 torchvision==0.23.0
	$(ZOO_PY) -m pip install -q -e ".[test]" torch==2.8.0 torchvision==0.23.0
	touch $(ZOO_STAMP)

test-zoo: $(ZOO_STAMP)
	OMP_NUM_THREADS=2 $(ZOO_PY) -m pytest -q -m zoo tests/test_zoo.py

lint: $(STAMP)
	$(PY) -m ruff check nncf_bootstrapnas tests examples benchmarks
	$(PY) -m ruff format --check nncf_bootstrapnas tests examples benchmarks

format: $(STAMP)
	$(PY) -m ruff format nncf_bootstrapnas tests examples benchmarks

clean:
	rm -rf $(VENV) $(ZOO_VENV) outputs build *.egg-info
