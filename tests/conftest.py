"""Shared fixtures. Keep this file small: fixtures used by one test module belong in that module."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module (small models: thread start-up costs more than it saves)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """``load_benchmark("search_efficiency")``: a script of benchmarks/ imported by path (it is not a package)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def digits_module():
    """The default digits data module (32x32, 3 channels, seed 0), built once per session (~1 s)."""
    from nncf_bootstrapnas.data import DigitsDataModule

    return DigitsDataModule(image_size=32, channels=3, seed=0, batch_size=32)


@pytest.fixture(scope="session")
def digits_loaders(digits_module):
    """Small, fast ``(train, val)`` loaders: fixed subsets of 320 training and 160 validation samples, batch 32.

    The training loader shuffles (reproducibly); the validation loader does not.
    """
    return (
        digits_module.subset_loader(320, split="train", shuffle=True),
        digits_module.subset_loader(160, split="val"),
    )


@pytest.fixture
def reference_model() -> Callable[..., nn.Module]:
    """Factory ``reference_model(name, small=True, num_classes=10, seed=0, **kwargs) -> nn.Module``.

    Weights are initialised under ``torch.manual_seed(seed)`` so they are identical across calls; the model is
    returned in eval mode. Pair it with ``nncf_bootstrapnas.models.example_input(name, batch)``.
    """
    from nncf_bootstrapnas.models import build_model

    def make(name: str, small: bool = True, num_classes: int = 10, seed: int = 0, **kwargs) -> nn.Module:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = build_model(name, num_classes=num_classes, small=small, **kwargs)
        return model.eval()

    return make


TINY_FMNIST_MODEL = {"name": "resnet18", "width": 0.125, "in_channels": 1, "layers": [1, 1, 1, 1]}


@pytest.fixture(scope="session")
def tiny_fmnist_artifact(tmp_path_factory) -> Path:
    """An untrained width-elastic tiny ResNet-18 on 1x28x28 inputs (widths 1/0.5), saved as ``save_supernet`` does
    with its factory and its original: what the Fashion-MNIST benchmark scripts load with ``--artifact``."""
    from nncf_bootstrapnas import create_supernet, load_config, save_supernet
    from nncf_bootstrapnas.models import ModelRef, build_model

    width = {"min_width": 4, "width_multipliers": [1.0, 0.5]}
    config = {
        "input_info": {"sample_size": [1, 1, 28, 28]},
        "bootstrapNAS": {"training": {"elasticity": {"available_elasticity_dims": ["width"], "width": width}}},
    }
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(**TINY_FMNIST_MODEL).eval()
    original = build_model(**TINY_FMNIST_MODEL)
    original.load_state_dict(model.state_dict())
    supernet = create_supernet(model, load_config(config), example_input=(torch.zeros(1, 1, 28, 28),))
    ref = ModelRef("nncf_bootstrapnas.models:build_model", dict(TINY_FMNIST_MODEL))
    path = tmp_path_factory.mktemp("supernet") / "supernet.pth"
    return save_supernet(path, supernet, model=ref, original=original, meta={"benchmark": "tests"})


# ---- tiers ------------------------------------------------------------------------------------------------------------
# `make test-unit` deselects the `integration` tests: those that start child processes, or train, export and measure
# real models for seconds each (chosen from `make test --durations=0`). Test modules mark their own; the tests of modules owned elsewhere are listed here by
# node id prefix (file, or file::test) so the tier is decided in one place.
INTEGRATION = (
    "tests/test_supernet_models.py",  # every reference architecture made elastic, extracted, exported
    "tests/test_export.py",  # ONNX / OpenVINO exports and INT8 checks
    "tests/test_benchmark.py",  # OpenVINO timing
    "tests/test_search_parallel.py",  # worker pools and two gloo ranks
    "tests/test_search_resume.py",  # killed child processes
    "tests/test_reference_models.py::test_pretrain",  # pre-training runs
    "tests/test_graph_analysis.py::test_block_size_bounds_limit_discovered_blocks",
    "tests/test_generator.py::test_configs_are_valid_and_deterministic",
    "tests/test_generator.py::test_predictor_mode_prefers_accurate_subnets",
    "tests/test_quality_report.py::test_rows_are_stratified_and_measured",  # fine-tunes subnets
    "tests/test_search_objectives.py::test_latency_ms_with_the_real_openvino_measurer",
    # NNCF's first quantization in a process loads its C++ extension (~35 s on two cores)
    "tests/test_checkpoint.py::test_artifact_round_trip_rebuilds_the_quantized_supernet_from_its_factory",
    # a foreign supernet trained in the module fixture, then searched, generated for and reported on end to end
    "tests/test_any_supernet.py::test_activation_really_changes_the_network",
    "tests/test_any_supernet.py::test_linas_search_end_to_end",
    "tests/test_any_supernet.py::test_generator_meets_macs_budgets",
    "tests/test_any_supernet.py::test_quality_report_on_the_foreign_supernet",
    "tests/test_quality_report.py::test_correlations_are_bounded_and_complete",  # the fine-tuned report's fixture
    "tests/test_quality_report.py::test_files_are_written",
    "tests/test_linas.py::test_front_at_least_as_good_as_the_earlier_linas_and_nsga2_at_a_small_budget",  # 3 searches
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: child processes or real models; in `make test`, not in test-unit")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(INTEGRATION):
            item.add_marker(pytest.mark.integration)
