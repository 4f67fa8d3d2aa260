"""Training is device-generic: where the device is known (the model's), training code never makes a tensor on the
CPU implicitly. Checked on the CPU (no GPU here) by recording every tensor factory that training, pipeline or models
code calls without ``device=`` while the whole training path runs: fit with sandwich steps, distillation,
quantization, BN adaptation, validation, checkpoints, resume, the artifact round trip and the legacy facade."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from test_training_support import (
    digits,
    legacy_train_epoch,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
    tiny_net,
    top1,
    training_config,
)
from torch.overrides import TorchFunctionMode

from nncf_bootstrapnas.training import EpochBasedTrainingAlgorithm, TrainingData, fit, load_supernet

PACKAGE = Path(__file__).resolve().parents[1] / "nncf_bootstrapnas"
CHECKED = tuple(str(PACKAGE / name) + os.sep for name in ("training", "pipeline", "models"))
FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.tensor, torch.as_tensor, torch.arange,
             torch.rand, torch.randn, torch.randint, torch.randperm, torch.eye, torch.linspace}  # fmt: skip
# CPU by design: the data order is drawn with a CPU generator (the sampler's indices live on the CPU).
ALLOWED = {("distributed.py", "__iter__")}


class ImplicitCpuTensors(TorchFunctionMode):
    """Records ``(file, line, function)`` of every factory call without ``device=`` made directly by checked code."""

    def __init__(self) -> None:
        super().__init__()
        self.found: set[tuple[str, int, str]] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            caller = sys._getframe(1)
            while caller is not None and caller.f_code.co_filename.endswith(os.path.join("torch", "overrides.py")):
                caller = caller.f_back
            path = caller.f_code.co_filename if caller is not None else ""
            if path.startswith(CHECKED) and (Path(path).name, caller.f_code.co_name) not in ALLOWED:
                self.found.add((str(Path(path).relative_to(PACKAGE)), caller.f_lineno, caller.f_code.co_name))
        return func(*args, **kwargs)


def test_the_detector_sees_an_implicit_cpu_tensor():
    from nncf_bootstrapnas.training import contract

    mode = ImplicitCpuTensors()
    with mode:
        contract.torch.zeros(3)  # called from this file: not checked code
        torch.zeros(3, device="cpu")
    assert not mode.found
    code = compile("def make():\n    return torch.zeros(2)\n", str(PACKAGE / "training" / "probe.py"), "exec")
    scope = {"torch": torch}
    exec(code, scope)  # noqa: S102 - a function that looks like training code to the detector
    with mode:
        scope["make"]()
    assert mode.found == {(os.path.join("training", "probe.py"), 2, "make")}


def test_no_implicit_cpu_tensors_on_any_training_path(tmp_path):
    train, val = digits(n_train=32, n_val=16)
    kd = [{"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 2.0}]
    stages = [
        {"train_dims": ["kernel", "width"], "epochs": 1, "width_indicator": 3, "reorg_weights": True, "bn_adapt": True},
        {"train_dims": ["kernel", "width", "depth"], "epochs": 1, "width_indicator": 3, "depth_indicator": 2},
    ]
    config = {
        **training_config(stages, sampling={"strategy": "sandwich", "num_random": 1}, compression=kd),
        "compression": [{"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 16}}}],
    }
    data = TrainingData(train, val)
    mode = ImplicitCpuTensors()
    with mode:
        first = fit(tiny_net(channels=8), data, config, checkpoint_dir=tmp_path, progress=False)
        load_supernet(first.last_checkpoint, tiny_net(channels=8))
        fit(tiny_net(channels=8), data, config, checkpoint_dir=tmp_path, resume=True, progress=False)
        model = tiny_net(channels=8)
        legacy = EpochBasedTrainingAlgorithm.from_config(model, training_config(stages[:1]))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        legacy.run(legacy_train_epoch, train, top1, val, optimizer, str(tmp_path / "legacy"))
    assert not mode.found, sorted(mode.found)
