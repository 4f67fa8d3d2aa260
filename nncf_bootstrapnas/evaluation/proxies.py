"""Zero-cost proxies: score an untrained or inherited subnet from one batch, without training it.

Implemented from the papers, on any plain ``nn.Module`` (typically ``supernet.extract(config)``):

- ``grad_norm``, ``snip``, ``fisher``, ``synflow``, ``jacob_cov``: Abdelfattah et al. 2021, "Zero-Cost Proxies for
  Lightweight NAS" (``jacob_cov`` is the score of Mellor et al.'s first NASWOT version that paper evaluates).
- ``naswot``: Mellor et al. 2021, "Neural Architecture Search without Training": log-determinant of the kernel
  ``K[i, j] = N_A - hamming(c_i, c_j)`` of the binary activation codes ``c`` of the batch.

Every proxy works on a deep copy (the caller's weights, BN statistics and modes are untouched), runs under a fixed
seed, and returns a float where higher means "predicted better". Data-dependent proxies run BN layers in train mode
(batch statistics, as the reference code does, so stale inherited statistics do not matter) with dropout and other
stochastic layers off. Scored layers are convolutions and ``nn.Linear`` (weights only), as in the reference code.
Signature of every registered proxy: ``proxy(model, batch, *, seed=0, loss_fn=None) -> float``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from nncf_bootstrapnas.registry import ZERO_COST_PROXIES

from .measure import IGNORE_INDEX, device_of, logits_of, split_batch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SCORED_LAYERS = (_ConvNd, nn.Linear)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.ELU, nn.CELU, nn.Mish)
JACOB_COV_K = 1e-5  # regulariser of the eigenvalues in the reference jacob_cov code


class ProxyError(ValueError):
    """A proxy that cannot score this model or batch."""


# ---- shared plumbing --------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _working_copy(model: nn.Module, bn_train: bool = True) -> nn.Module:
    """A float copy with gradients enabled: BN layers in train mode (batch statistics), everything else in eval."""
    work = copy.deepcopy(model)
    work.eval()
    if bn_train:
        for m in work.modules():
            if isinstance(m, _BatchNorm):
                m.train()
    for p in work.parameters():
        p.requires_grad_(True)
        p.grad = None
    return work


def _batch(model: nn.Module, batch: Any, name: str, need_targets: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    x, y = split_batch(batch)
    if not isinstance(x, torch.Tensor):
        raise ProxyError(f"proxy '{name}': inputs must be a tensor, got {type(x).__name__}")
    if need_targets and y is None:
        raise ProxyError(f"proxy '{name}' needs a labelled batch (inputs, targets); got inputs only")
    device = device_of(model)
    return x.to(device), (y.to(device) if y is not None else None)


def _loss(output: Any, y: torch.Tensor, loss_fn: LossFn | None) -> torch.Tensor:
    logits = logits_of(output)
    if loss_fn is not None:
        return loss_fn(logits, y)
    return F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)


def _scored_layers(model: nn.Module) -> list[nn.Module]:
    layers = [m for m in model.modules() if isinstance(m, SCORED_LAYERS) and getattr(m, "weight", None) is not None]
    if not layers:
        raise ProxyError(f"no convolution or linear layer to score in {type(model).__name__}")
    return layers


def _backward_loss(model: nn.Module, batch: Any, name: str, seed: int, loss_fn: LossFn | None) -> nn.Module:
    """A working copy whose parameters hold ``d loss / d w`` for one batch."""
    work = _working_copy(model)
    x, y = _batch(work, batch, name, need_targets=True)
    with _seeded(seed):
        _loss(work(x), y, loss_fn).backward()  # type: ignore[arg-type]
    return work


def _weight_grad(layer: nn.Module) -> torch.Tensor:
    grad = layer.weight.grad
    return grad if grad is not None else torch.zeros_like(layer.weight)


def _register(name: str) -> Callable[[Callable[..., float]], Callable[..., float]]:
    def deco(fn: Callable[..., float]) -> Callable[..., float]:
        fn.proxy_name = name  # type: ignore[attr-defined]
        fn.higher_is_better = True  # type: ignore[attr-defined]
        return ZERO_COST_PROXIES.register(name)(fn)

    return deco


# ---- gradient-based proxies -----------------------------------------------------------------------------------------
@_register("grad_norm")
def grad_norm(model: nn.Module, batch: Any, *, seed: int = 0, loss_fn: LossFn | None = None) -> float:
    """Sum over layers of the Euclidean norm of ``d loss / d W``."""
    work = _backward_loss(model, batch, "grad_norm", seed, loss_fn)
    return float(sum(float(_weight_grad(m).norm()) for m in _scored_layers(work)))


@_register("snip")
def snip(model: nn.Module, batch: Any, *, seed: int = 0, loss_fn: LossFn | None = None) -> float:
    """Connection sensitivity (Lee et al. 2019): sum of ``|W * d loss / d W|``."""
    work = _backward_loss(model, batch, "snip", seed, loss_fn)
    return float(sum(float((m.weight.detach() * _weight_grad(m)).abs().sum()) for m in _scored_layers(work)))


@_register("fisher")
def fisher(model: nn.Module, batch: Any, *, seed: int = 0, loss_fn: LossFn | None = None) -> float:
    """Fisher information of the layer outputs (Theis et al. 2018, as channel-pruning saliency).

    Per output channel ``k``: ``0.5 * mean_n (sum_spatial a_nk * g_nk)^2`` with ``a`` a layer's output and ``g`` the loss
    gradient w.r.t. it; summed over channels and layers (a layer called twice contributes twice).
    """
    work = _working_copy(model)
    x, y = _batch(work, batch, "fisher", need_targets=True)
    scores: list[float] = []
    hooks = []

    def on_forward(module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            return
        act = out.detach().clone()  # the value before any in-place activation that follows
        channel_dim = out.dim() - 1 if isinstance(module, nn.Linear) else 1

        def on_grad(grad: torch.Tensor) -> None:
            g = act * grad.detach()
            dims = [d for d in range(1, g.dim()) if d != channel_dim]
            g_nk = g.sum(dim=dims) if dims else g
            scores.append(float(g_nk.pow(2).mean(0).mul(0.5).sum()))

        out.register_hook(on_grad)

    for layer in _scored_layers(work):
        hooks.append(layer.register_forward_hook(on_forward))
    try:
        with _seeded(seed):
            _loss(work(x), y, loss_fn).backward()  # type: ignore[arg-type]
    finally:
        for h in hooks:
            h.remove()
    return float(sum(scores))


@_register("synflow")
def synflow(model: nn.Module, batch: Any, *, seed: int = 0, loss_fn: LossFn | None = None) -> float:
    """Synaptic flow (Tanaka et al. 2020): ``sum |W * dR/dW|`` with ``R = sum(f_|W|(1))``.

    Data-free: all parameters and buffers replaced by their absolute values, BN layers removed (the paper's default
    ``synflow``; ``synflow_bn`` is not provided), input of ones with one sample, float64 against overflow.
    """
    del loss_fn
    work = copy.deepcopy(model)
    for path in [p for p, m in work.named_modules() if isinstance(m, _BatchNorm) and p]:
        work.set_submodule(path, nn.Identity())
    work = work.double().eval()
    with torch.no_grad():
        for t in list(work.parameters()) + list(work.buffers()):
            if t.is_floating_point():
                t.abs_()
    for p in work.parameters():
        p.requires_grad_(True)
        p.grad = None
    x, _ = _batch(work, batch, "synflow", need_targets=False)
    if not x.is_floating_point():
        raise ProxyError("proxy 'synflow' needs floating-point inputs (an input of ones is fed)")
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    with _seeded(seed):
        logits_of(work(ones)).sum().backward()
    return float(sum(float((m.weight.detach() * _weight_grad(m)).abs().sum()) for m in _scored_layers(work)))


# ---- activation / Jacobian-based proxies ----------------------------------------------------------------------------
@_register("jacob_cov")
def jacob_cov(model: nn.Module, batch: Any, *, seed: int = 0, loss_fn: LossFn | None = None) -> float:
    """``-sum_i (log(v_i + k) + 1 / (v_i + k))`` over eigenvalues ``v`` of the correlation matrix of per-sample
    input Jacobians (of the summed outputs), ``k = 1e-5``.

    Returns NaN when the correlation is undefined (a Jacobian row is constant, e.g. all weights zero), as the
    reference code does.
    """
    del loss_fn
    work = _working_copy(model)
    x, _ = _batch(work, batch, "jacob_cov", need_targets=False)
    if not x.is_floating_point():
        raise ProxyError("proxy 'jacob_cov' needs floating-point inputs (it differentiates w.r.t. them)")
    if x.shape[0] < 2:
        raise ProxyError(f"proxy 'jacob_cov' needs a batch of at least 2 samples, got {x.shape[0]}")
    x = x.detach().clone().requires_grad_(True)
    with _seeded(seed):
        out = logits_of(work(x))
        out.backward(torch.ones_like(out))
    jac = x.grad.detach().reshape(x.shape[0], -1).double().cpu().numpy()  # type: ignore[union-attr]
    if np.any(jac.std(axis=1) == 0) or not np.all(np.isfinite(jac)):
        return float("nan")
    eig = np.clip(np.linalg.eigvalsh(np.corrcoef(jac)), 0.0, None)
    return float(-np.sum(np.log(eig + JACOB_COV_K) + 1.0 / (eig + JACOB_COV_K)))


@_register("naswot")
def naswot(model: nn.Module, batch: Any, *, seed: int = 0, loss_fn: LossFn | None = None) -> float:
    """``log |K_H|`` with ``K_H = C C^T + (1 - C)(1 - C)^T`` over the binary codes ``C`` (input > 0) of every activation.

    Codes are read before each activation module runs (in-place activations would destroy them); if the model has no
    activation module (functional activations only) the outputs of its convolution and linear layers are used. ``-inf``
    when ``K_H`` is singular (e.g. all codes equal: a collapsed network).
    """
    del loss_fn
    work = _working_copy(model)
    x, _ = _batch(work, batch, "naswot", need_targets=False)
    n = x.shape[0]
    if n < 2:
        raise ProxyError(f"proxy 'naswot' needs a batch of at least 2 samples, got {n}")
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def add_codes(t: Any) -> None:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.shape[:1] == (n,):
            c = (t.detach().reshape(n, -1) > 0).double().cpu()
            kernel.add_(c @ c.T + (1.0 - c) @ (1.0 - c).T)

    acts = [m for m in work.modules() if isinstance(m, ACTIVATIONS)]
    if acts:
        hooks = [m.register_forward_pre_hook(lambda _m, inp: add_codes(inp[0] if inp else None)) for m in acts]
    else:
        hooks = [m.register_forward_hook(lambda _m, _i, out: add_codes(out)) for m in _scored_layers(work)]
    try:
        with torch.no_grad(), _seeded(seed):
            work(x)
    finally:
        for h in hooks:
            h.remove()
    sign, logdet = np.linalg.slogdet(kernel.numpy())
    return float(logdet) if sign > 0 else float("-inf")


# ---- public helpers ---------------------------------------------------------------------------------------------------
def get_proxy(name: str) -> Callable[..., float]:
    """A registered proxy by name (raises ``RegistryError`` naming the registered ones)."""
    return ZERO_COST_PROXIES.get(name)


def compute_proxy(name: str, model: nn.Module, batch: Any, seed: int = 0, loss_fn: LossFn | None = None) -> float:
    """Score ``model`` on ``batch`` with the proxy registered as ``name``."""
    return float(get_proxy(name)(model, batch, seed=seed, loss_fn=loss_fn))


BUILTIN_PROXIES = ("synflow", "snip", "grad_norm", "fisher", "jacob_cov", "naswot")

__all__ = [
    "BUILTIN_PROXIES",
    "ProxyError",
    "compute_proxy",
    "fisher",
    "get_proxy",
    "grad_norm",
    "jacob_cov",
    "naswot",
    "snip",
    "synflow",
]
