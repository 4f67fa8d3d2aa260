"""What both workers share, so that the two sides differ only in the library under test.

Imports torch, torchvision and numpy only: it runs unchanged in the NNCF 2.18 venv and in ours. The worker protocol:
``python <side>.py TASK SPEC.json RESULT.json``; the result is one JSON object; lines starting with ``@progress`` on
stdout are shown by the parent's progress bar.
"""

from __future__ import annotations

import json
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

# Fashion-MNIST training-set mean / std of the [0, 1] pixel values.
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
BENCH_MODEL = "resnet18_fmnist"


def progress(message: str) -> None:
    """One line for the parent's progress display."""
    print(f"@progress {message}", flush=True)


def bench_model(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 for 1x28x28 grey input: 3x3 stride-2 stem (28 -> 14, max-pool -> 7), 10 classes."""
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=2, padding=1, bias=False)
    return model


def zoo_model(name: str, image_size: int) -> nn.Module:
    """A torchvision classification model with random weights; ViTs are built for ``image_size``."""
    factory = getattr(torchvision.models, name)
    kwargs: dict[str, Any] = {"weights": None}
    if name.startswith("vit_"):
        kwargs["image_size"] = image_size
    return factory(**kwargs)


def set_threads(threads: int, seed: int = 0) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)


# ---- data ------------------------------------------------------------------------------------------------------------
def load_split(npz: str | Path, split: str) -> torch.utils.data.TensorDataset:
    """``train`` or ``val`` of the parent's .npz as normalised (N, 1, 28, 28) float tensors and int64 labels."""
    data = np.load(npz)
    images = torch.from_numpy(data[f"{split}_x"]).float().div_(255.0).sub_(FMNIST_MEAN).div_(FMNIST_STD)
    return torch.utils.data.TensorDataset(images.unsqueeze(1), torch.from_numpy(data[f"{split}_y"]).long())


def loaders(npz: str | Path, batch_size: int, seed: int) -> tuple[Any, Any]:
    """Shuffled (seeded) train loader and ordered validation loader over the same tensors on both sides."""
    generator = torch.Generator().manual_seed(seed)
    train = torch.utils.data.DataLoader(load_split(npz, "train"), batch_size=batch_size, shuffle=True,
                                        generator=generator, drop_last=True)  # fmt: skip
    val = torch.utils.data.DataLoader(load_split(npz, "val"), batch_size=256, shuffle=False)
    return train, val


# ---- the legacy NNCF sample callbacks (identical on both sides) -----------------------------------------------------
def make_optimizer(params: Any, options: dict[str, Any]) -> torch.optim.Optimizer:
    """SGD from the config's NNCF-sample ``optimizer`` section."""
    return torch.optim.SGD(params, lr=float(options.get("base_lr", 0.01)), momentum=float(options.get("momentum", 0.9)),
                           nesterov=bool(options.get("nesterov", True)),
                           weight_decay=float(options.get("weight_decay", 0.0)))  # fmt: skip


def make_train_epoch_fn(train_steps: int | None = None) -> Callable[..., None]:
    """The NNCF sample's ``train_epoch``: scheduler step (activates the step's subnet), CE + compression loss."""
    criterion = nn.CrossEntropyLoss()

    def train_epoch_fn(loader: Any, model: nn.Module, compression_ctrl: Any, epoch: int, optimizer: Any) -> None:
        model.train()
        lrs, losses = [], []
        for i, (images, target) in enumerate(loader):
            compression_ctrl.scheduler.step()
            loss = criterion(model(images), target) + compression_ctrl.loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            lrs.append(optimizer.param_groups[0]["lr"])
            losses.append(float(loss))
            if train_steps and i + 1 >= train_steps:
                break
        progress(f"epoch {epoch + 1}: lr {lrs[0]:.2e} -> {lrs[-1]:.2e}, mean loss {sum(losses) / len(losses):.3f}")

    return train_epoch_fn


def validate(model: nn.Module, loader: Any) -> tuple[float, float, float]:
    """``(top1 %, top5 %, mean CE loss)``, the legacy ``val_fn`` signature."""
    model.eval()
    top1 = top5 = loss = 0.0
    count = 0
    with torch.no_grad():
        for images, target in loader:
            output = model(images)
            top = output.topk(5, 1).indices
            top1 += float((top[:, 0] == target).sum())
            top5 += float((top == target[:, None]).any(1).sum())
            loss += float(nn.functional.cross_entropy(output, target, reduction="sum"))
            count += len(target)
    return 100.0 * top1 / count, 100.0 * top5 / count, loss / count


def validate_top1(model: nn.Module, loader: Any) -> float:
    return validate(model, loader)[0]


def read_config(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def pretrain_task(spec: dict[str, Any]) -> dict[str, Any]:
    """Pre-train the benchmark model once (seeded) and save the state_dict both sides start from."""
    train, val = loaders(spec["data"], spec["batch_size"], spec["seed"])
    torch.manual_seed(spec["seed"])
    model = bench_model()
    if spec.get("init_weights"):
        model.load_state_dict(torch.load(spec["init_weights"], weights_only=True))
    start = time.perf_counter()
    accuracy = pretrain(model, train, val, spec["epochs"], spec["lr"])
    torch.save(model.state_dict(), spec["weights"])
    return {"accuracy": accuracy, "pretrain_s": time.perf_counter() - start}


def recalibrate_bn(model: nn.Module, loader: Any, samples: int) -> None:
    """The same BN recalibration on both sides: running statistics reset, then an exact (cumulative) average over
    ``samples`` training images, so that accuracies compare the trained weights, not the libraries' BN adaptation."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.eval()
    for m in bns:
        m.train()
    seen = 0
    with torch.no_grad():
        for images, _ in loader:
            model(images)
            seen += len(images)
            if seen >= samples:
                break
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    model.eval()


def pretrain(model: nn.Module, train: Any, val: Any, epochs: int, lr: float) -> float:
    """Plain supervised training (SGD, cosine lr); returns the validation top-1."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs * len(train)))
    criterion = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        for images, target in train:
            opt.zero_grad()
            criterion(model(images), target).backward()
            opt.step()
            sched.step()
        progress(f"pre-train epoch {epoch + 1}/{epochs}")
    return validate_top1(model, val)


# ---- timing ----------------------------------------------------------------------------------------------------------
def interleaved_medians(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each callable, run in turn so that load drift affects all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def step_fn(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, torch.Tensor]) -> Callable:
    """One SGD training step of ``model`` on ``batch`` (forward, CE, backward, update)."""
    images, target = batch

    def step() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(images), target).backward()
        optimizer.step()

    return step


def forward_fn(model: nn.Module, images: torch.Tensor) -> Callable:
    def forward() -> None:
        model.eval()
        with torch.no_grad():
            model(images)

    return forward


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# ---- per-item failures and the worker entry point --------------------------------------------------------------------
class ItemTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise ``ItemTimeout`` in the main thread after ``seconds`` (0: no limit)."""

    def fire(signum: int, frame: Any) -> None:
        raise ItemTimeout(f"timed out after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(max(0, int(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def failure(exc: BaseException) -> str:
    """One-line failure message: type, first line, truncated."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300]


def origin(exc: BaseException) -> str:
    """Where it failed: the last frame in the benchmark's own files, then the innermost frame (library code)."""
    stack = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in stack if Path(f.filename).parent == Path(__file__).parent]
    inner = stack[-1] if stack else None
    parts = [f"{Path(f.filename).name}:{f.name}" for f in (ours[-1:] + ([inner] if inner else []))]
    return " -> ".join(dict.fromkeys(parts))


def run_worker(tasks: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> int:
    """``argv = TASK SPEC.json RESULT.json``; writes the task's result, or its error and traceback (exit 1)."""
    task, spec_path, result_path = sys.argv[1:4]
    spec = json.loads(Path(spec_path).read_text())
    set_threads(int(spec.get("threads", 1)), int(spec.get("seed", 0)))
    start = time.perf_counter()
    try:
        result, code = tasks[task](spec), 0
    except Exception as exc:  # the parent records the failure instead of aborting the comparison
        traceback.print_exc()
        result, code = {"error": failure(exc), "traceback": traceback.format_exc()}, 1
    result["worker_wall_s"] = time.perf_counter() - start
    result["versions"] = versions()
    Path(result_path).write_text(json.dumps(result, indent=1, default=float))
    return code


def versions() -> dict[str, Any]:
    out = {"python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__,
           "threads": torch.get_num_threads()}  # fmt: skip
    for name in ("nncf", "nncf_bootstrapnas"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out
