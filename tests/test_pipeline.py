"""create_compressed_model with small algorithms registered from outside the package, as users would."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch import nn

from nncf_bootstrapnas.config import ConfigError, load_config
from nncf_bootstrapnas.pipeline import (
    AlgorithmBuilder,
    AlgorithmController,
    CompositeController,
    create_compressed_model,
)
from nncf_bootstrapnas.registry import COMPRESSION_ALGORITHMS, TRAINING_ALGORITHMS

LOG: list[tuple[str, str, Any]] = []


class ToyScheduler:
    def __init__(self, name: str) -> None:
        self.name, self.epoch, self.steps = name, -1, 0

    def epoch_step(self, epoch: int | None = None) -> None:
        self.epoch = self.epoch + 1 if epoch is None else epoch
        LOG.append((self.name, "epoch_step", epoch))

    def step(self, next_step: int | None = None) -> None:
        self.steps += 1
        LOG.append((self.name, "step", next_step))

    def get_state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "steps": self.steps}

    def load_state(self, state: dict[str, Any]) -> None:
        self.epoch, self.steps = state["epoch"], state["steps"]


class ToyController:
    def __init__(self, name: str, model: nn.Module, weight: float) -> None:
        self.name, self.model, self.weight = name, model, weight
        self.scheduler = ToyScheduler(name)
        self.counter = 0

    def loss(self) -> torch.Tensor:
        return self.weight * sum(p.abs().sum() for p in self.model.parameters())

    def statistics(self) -> dict[str, Any]:
        return {"counter": self.counter, "weight": self.weight}

    def get_state(self) -> dict[str, Any]:
        return {"counter": self.counter, "scheduler": self.scheduler.get_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.counter = state["counter"]
        self.scheduler.load_state(state["scheduler"])


class Wrapped(nn.Module):
    """What a toy algorithm returns: the previous model inside, tagged with the algorithm name."""

    def __init__(self, inner: nn.Module, tag: str) -> None:
        super().__init__()
        self.inner, self.tag = inner, tag

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def make_builder(name: str, weight: float) -> type:
    class ToyBuilder:
        def __init__(self, config, section: dict[str, Any]) -> None:
            self.config, self.section = config, section
            LOG.append((name, "init", section))

        def apply_to(self, model: nn.Module, example_input: Any) -> nn.Module:
            LOG.append((name, "apply_to", (model, example_input)))
            return Wrapped(model, name)

        def build_controller(self, model: nn.Module) -> ToyController:
            LOG.append((name, "build_controller", model))
            return ToyController(name, model, weight)

    return ToyBuilder


@pytest.fixture(autouse=True)
def toy_algorithms():
    """Register like user code does (decorator on the public registries) and clean up afterwards."""
    LOG.clear()
    TRAINING_ALGORITHMS.register("toy_training")(make_builder("toy_training", 1.0))
    COMPRESSION_ALGORITHMS.register("toy_quant")(make_builder("toy_quant", 0.5))
    COMPRESSION_ALGORITHMS.register("toy_prune")(make_builder("toy_prune", 0.25))
    yield
    for name in ("toy_training", "toy_extra"):
        TRAINING_ALGORITHMS.unregister(name)
    for name in ("toy_quant", "toy_prune", "toy_extra"):
        COMPRESSION_ALGORITHMS.unregister(name)


def config_with(*compression: str, training: str | None = "toy_training", **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"input_info": {"sample_size": [2, 4]}, **extra}
    if training is not None:
        config["bootstrapNAS"] = {"training": {"algorithm": training}}
    config["compression"] = [{"algorithm": name, "level": i} for i, name in enumerate(compression)]
    return config


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 3)


def test_build_order_and_model_chaining():
    original = model()
    ctrl, result = create_compressed_model(original, config_with("toy_prune", "toy_quant"))
    calls = [(name, what) for name, what, _ in LOG]
    assert calls == [
        ("toy_training", "init"),
        ("toy_training", "apply_to"),
        ("toy_training", "build_controller"),
        ("toy_prune", "init"),
        ("toy_prune", "apply_to"),
        ("toy_prune", "build_controller"),
        ("toy_quant", "init"),
        ("toy_quant", "apply_to"),
        ("toy_quant", "build_controller"),
    ]
    applied = [payload[0] for _, what, payload in LOG if what == "apply_to"]
    built = [payload for _, what, payload in LOG if what == "build_controller"]
    assert applied[0] is original and applied[1] is built[0] and applied[2] is built[1]
    assert result is built[2] and [result.tag, result.inner.tag, result.inner.inner.tag] == [
        "toy_quant",
        "toy_prune",
        "toy_training",
    ]
    assert isinstance(ctrl, CompositeController) and ctrl.names == ["toy_training", "toy_prune", "toy_quant"]


def test_builders_get_config_and_their_own_section():
    create_compressed_model(model(), config_with("toy_quant"))
    sections = {name: payload for name, what, payload in LOG if what == "init"}
    training = sections["toy_training"]
    assert training["algorithm"] == "toy_training" and "schedule" in training  # defaults filled
    assert sections["toy_quant"] == {"algorithm": "toy_quant", "level": 0}


def test_example_input_defaults_to_config_and_is_a_tuple():
    create_compressed_model(model(), config_with("toy_quant", training=None))
    (example,) = [payload[1] for _, what, payload in LOG if what == "apply_to"]
    assert isinstance(example, tuple) and [t.shape for t in example] == [torch.Size([2, 4])]
    LOG.clear()
    given = torch.randn(5, 4)
    create_compressed_model(model(), config_with("toy_quant", training=None), example_input=given)
    (example,) = [payload[1] for _, what, payload in LOG if what == "apply_to"]
    assert example[0] is given and len(example) == 1


def test_without_bootstrapnas_section_training_is_not_built():
    ctrl, result = create_compressed_model(model(), config_with("toy_quant", training=None))
    assert [n for n, what, _ in LOG if what == "init"] == ["toy_quant"]
    assert isinstance(ctrl, ToyController) and ctrl.name == "toy_quant"  # one algorithm: its own controller
    assert result.tag == "toy_quant"


@pytest.mark.parametrize(
    "config, path, name",
    [
        (config_with("toy_quant", "no_such_algo"), "compression[1].algorithm", "no_such_algo"),
        (config_with(training="no_such_training"), "bootstrapNAS.training.algorithm", "no_such_training"),
    ],
)
def test_unknown_algorithm_names_path_and_registered_names(config, path, name):
    with pytest.raises(ConfigError) as info:
        create_compressed_model(model(), config)
    error = info.value
    assert error.path == path and error.value == name and str(error).startswith(f"{path}: ")
    assert f"'{name}'" in str(error)
    registry = COMPRESSION_ALGORITHMS if path.startswith("compression") else TRAINING_ALGORITHMS
    assert error.allowed == registry.names()
    assert ("toy_quant" if registry is COMPRESSION_ALGORITHMS else "toy_training") in str(error)
    assert not [entry for entry in LOG if entry[1] == "apply_to"]  # names are resolved before the model is touched


def test_names_are_checked_at_load_and_user_registrations_count():
    with pytest.raises(ConfigError, match="compression\\[0\\].algorithm.*toy_extra"):
        load_config(config_with("toy_extra", training=None))  # before any model is touched
    COMPRESSION_ALGORITHMS.register("toy_extra")(make_builder("toy_extra", 2.0))
    ctrl, _ = create_compressed_model(model(), load_config(config_with("toy_extra", training=None)))
    assert ctrl.name == "toy_extra"


def test_composite_controller_contract():
    ctrl, result = create_compressed_model(model(), config_with("toy_quant"))
    assert isinstance(ctrl, AlgorithmController) and isinstance(ctrl["toy_quant"], AlgorithmController)
    children = ctrl.controllers
    expected = sum(c.loss() for c in children.values())
    assert torch.allclose(ctrl.loss(), expected) and expected.detach().item() > 0
    ctrl.loss().backward()  # the sum keeps the graph
    assert result.inner.inner.weight.grad is not None
    LOG.clear()
    ctrl.scheduler.epoch_step(3)
    ctrl.scheduler.step()
    assert LOG == [
        ("toy_training", "epoch_step", 3),
        ("toy_quant", "epoch_step", 3),
        ("toy_training", "step", None),
        ("toy_quant", "step", None),
    ]
    stats = ctrl.statistics()
    assert stats == {f"{n}/{k}": v for n, c in children.items() for k, v in c.statistics().items()}
    with pytest.raises(KeyError, match="algorithms: \\['toy_training', 'toy_quant'\\]"):
        ctrl["missing"]


def test_empty_pipeline():
    ctrl, result = create_compressed_model(model(), {"input_info": {"sample_size": [1, 4]}})
    assert isinstance(ctrl, CompositeController) and len(ctrl) == 0 and isinstance(result, nn.Linear)
    assert ctrl.loss().item() == 0 and ctrl.statistics()
    assert ctrl.get_state() == {} and ctrl.scheduler.get_state() == {}


def test_state_round_trip_through_json():
    config = config_with("toy_quant")
    ctrl, _ = create_compressed_model(model(), config)
    ctrl["toy_training"].counter, ctrl["toy_quant"].counter = 7, 11
    ctrl.scheduler.epoch_step(2)
    ctrl.scheduler.step()
    saved = json.loads(json.dumps({"ctrl": ctrl.get_state(), "sched": ctrl.scheduler.get_state()}))
    fresh, _ = create_compressed_model(model(), config)
    assert fresh.get_state() != saved["ctrl"]
    fresh.load_state(saved["ctrl"])
    assert fresh.get_state() == saved["ctrl"]
    assert fresh["toy_quant"].counter == 11 and fresh["toy_training"].scheduler.epoch == 2
    fresh.scheduler.load_state(saved["sched"])
    assert fresh.scheduler.get_state() == saved["sched"]


def test_load_state_rejects_other_pipelines():
    ctrl, _ = create_compressed_model(model(), config_with("toy_quant"))
    other, _ = create_compressed_model(model(), config_with("toy_prune"))
    with pytest.raises(ValueError, match=r"missing \['toy_quant'\], unexpected \['toy_prune'\]"):
        ctrl.load_state(other.get_state())
    with pytest.raises(ValueError, match="scheduler state does not match"):
        ctrl.scheduler.load_state({"toy_training": {"epoch": 0, "steps": 0}})


def test_non_json_state_is_reported_with_algorithm_name():
    ctrl, _ = create_compressed_model(model(), config_with("toy_quant"))
    ctrl["toy_quant"].counter = torch.tensor(1)
    with pytest.raises(TypeError, match="'toy_quant' is not plain JSON"):
        ctrl.get_state()


def test_builder_contract_violations_are_reported():
    class ReturnsNothing:
        def __init__(self, config, section):
            pass

        def apply_to(self, model, example_input):
            return None

        def build_controller(self, model):
            raise AssertionError("not reached")

    class BadController(ReturnsNothing):
        def apply_to(self, model, example_input):
            return model

        def build_controller(self, model):
            return object()

    assert isinstance(make_builder("x", 1.0)(None, {}), AlgorithmBuilder)
    COMPRESSION_ALGORITHMS.register("toy_extra")(ReturnsNothing)
    with pytest.raises(TypeError, match="'toy_extra': apply_to\\(\\) returned NoneType"):
        create_compressed_model(model(), config_with("toy_extra", training=None))
    COMPRESSION_ALGORITHMS.register("toy_extra", override=True)(BadController)
    with pytest.raises(TypeError, match="'toy_extra': its controller lacks scheduler, loss"):
        create_compressed_model(model(), config_with("toy_extra", training=None))


def test_config_as_path_and_dump_graphs(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config_with("toy_quant", log_dir=str(tmp_path / "logs"))))
    ctrl, result = create_compressed_model(model(), str(path), dump_graphs=True)
    assert "Linear" in (tmp_path / "logs" / "original_model.txt").read_text()
    assert (tmp_path / "logs" / "compressed_model.txt").read_text().startswith("Wrapped(")
    assert ctrl.names == ["toy_training", "toy_quant"]


@pytest.mark.integration  # a child process
def test_public_api_names_stay_functions_whatever_was_imported_first():
    """Importing every stage first must not shadow the public functions with same-named subpackages."""
    import subprocess
    import sys

    code = (
        "import nncf_bootstrapnas.training, nncf_bootstrapnas.subnet_search, nncf_bootstrapnas.deployment\n"
        "from nncf_bootstrapnas import fit, benchmark\n"
        "import nncf_bootstrapnas as n\n"
        "from nncf_bootstrapnas import export, search\n"
        "assert callable(export) and callable(search) and callable(n.export) and callable(n.search), (export, search)\n"
        "assert sorted(n.__all__) == sorted(dir(n)) and all(hasattr(n, a) for a in n.__all__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.integration
def test_every_stage_through_the_api(tmp_path):
    """The API a user scripts, stage by stage, on a tiny budget: pre-train, fit, the supernet artifact, search, export,
    benchmark, the generator and the quality report (the CLI's stages are covered by tests/test_cli_run.py)."""
    from nncf_bootstrapnas import (
        TrainingData,
        benchmark,
        export,
        fit,
        generate,
        load_supernet,
        quality_report,
        save_supernet,
        search,
        train_generator,
    )
    from nncf_bootstrapnas.data import DigitsDataModule
    from nncf_bootstrapnas.evaluation import top1_accuracy
    from nncf_bootstrapnas.models import pretrain, resolve_model

    config = load_config({
        "input_info": {"sample_size": [1, 3, 32, 32]},
        "bootstrapNAS": {
            "training": {
                "elasticity": {"width": {"min_width": 8, "width_multipliers": [1.0, 0.5]}},
                "schedule": {"list_stage_descriptions": [{"train_dims": ["kernel", "width", "depth"], "epochs": 1,
                                                          "width_indicator": 2, "init_lr": 0.005}]},
                "sampling": {"strategy": "sandwich", "num_random": 0},
                "train_steps": 2,
            },
            "search": {"num_evals": 4, "population": 2, "batchnorm_adaptation": {"num_bn_adaptation_samples": 32}},
        },
        "generator": {"epochs": 1, "num_constraint_values": 2, "hidden_dim": 8},
        "quality_report": {"num_subnets": 3, "finetune_epochs": 1, "top_k": 2},
    })  # fmt: skip
    dm = DigitsDataModule(image_size=32, channels=3, batch_size=32)
    train, val, bn = (
        dm.subset_loader(64, "train", shuffle=True),
        dm.subset_loader(64, "val"),
        dm.subset_loader(64, "train"),
    )
    ref = resolve_model("resnet18", small=True)
    model, ref_acc = pretrain(ref.build(), train, val, epochs=1)
    trained = fit(model, TrainingData(train, val, bn=bn), config, val_fn=top1_accuracy, progress=False).supernet
    path = save_supernet(tmp_path / "supernet.pth", trained, model=ref, original=model, meta={"ref_acc": ref_acc})
    supernet = load_supernet(path)  # the file alone rebuilds it
    result = search(supernet, config, top1_accuracy, val, bn, progress=False, ref_acc=ref_acc)
    assert len(result.rows) >= 4 and result.select() is not None
    chosen = result.select().config
    exported = export(supernet, tmp_path / "export", config=chosen, formats=("openvino",), int8_fp32_rtol=None,
                      progress=False)  # fmt: skip
    bench = benchmark(exported.paths["openvino"], (1, 3, 32, 32), time_budget_s=0.2, warmup_iters=1, progress=False)
    assert bench.throughput_fps > 0
    space = supernet.search_space
    budget = (supernet.macs(space.minimum()) + supernet.macs(space.maximum())) / 2
    generator = train_generator(supernet, config, predictor=result, train_loader=bn, val_loader=val, progress=False)
    assert supernet.macs(generate(supernet, generator, f"macs={budget}", strict=True)) <= budget
    report = quality_report(supernet, bn, val, config, validate_fn=top1_accuracy, out_dir=tmp_path / "quality",
                            progress=False)  # fmt: skip
    assert len(report.rows) == 3
