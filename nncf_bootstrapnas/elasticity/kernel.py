"""Elastic kernel size on any convolution module, including subclasses that pad in their own ``forward``.

Choices: odd square kernels >= 5 shrink by 2 down to 3 (Once-for-All). A smaller kernel must keep the output shape.
Where the padding comes from decides how:

- ``padding`` attribute (torch's own convs, ``padding="same"``): the active kernel is physically smaller in the
  super-network and in the extracted module (``kernel_size`` and ``padding`` follow it);
- padding computed from ``kernel_size`` in ``forward`` (dynamic "same" padding): the same, ``kernel_size`` follows;
- padding fixed at construction (EfficientNet-Lite's ``Conv2dStaticSamePadding`` with a ``ZeroPad2d`` child): in the
  super-network the active centre is embedded in zeros at the full size (mathematically the smaller kernel, output
  shape kept); the extracted module gets the smaller kernel and its pad child shrinks by the same amount per side.

Each way is verified when the super-network is built, by running a physically smaller copy of the module against the
zero-embedded kernel on an input of the traced shape; a convolution no way reproduces keeps its kernel, with the reason.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..graph.analysis import AnalysedGraph, matches_scope

logger = logging.getLogger("nncf_bootstrapnas")


@dataclass(frozen=True)
class KernelPlan:
    choices: tuple[int, ...]
    mode: str  # "padding" | "dynamic" | "pad_child"
    child: str | None = None  # the pad module's name for "pad_child"

    @property
    def embed(self) -> bool:
        """The super-network runs the zero-embedded full-size kernel (the padding cannot follow a smaller one)."""
        return self.mode == "pad_child"


def kernel_choices(conv: nn.Module, max_num_kernels: int) -> tuple[tuple[int, ...], str | None]:
    """Candidate kernels by shape alone; ``((), reason)`` when the kernel cannot be elastic."""
    if not isinstance(conv, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return (), None
    ks = tuple(conv.kernel_size)
    if len(set(ks)) != 1:
        return (), f"non-square kernel {ks}"
    k = ks[0]
    if k % 2 == 0 and k >= 4:
        return (), f"even kernel {k}"
    if k < 5:
        return (), None
    if conv.stride[0] == k and k > 1:
        return (), "patch embedding (stride equals kernel)"
    if conv.padding_mode != "zeros":
        return (), f"padding mode {conv.padding_mode!r}"
    choices = tuple(range(k, 2, -2))
    if max_num_kernels and max_num_kernels > 0:
        choices = choices[:max_num_kernels]
    if len(choices) < 2:
        return (), None
    return choices, None


def extraction_attrs(conv: nn.Module, plan: KernelPlan, kernel: int) -> tuple[dict, dict]:
    """(attributes, child attributes) of the physically smaller module with ``kernel``."""
    kmax = plan.choices[0]
    nd = len(conv.__dict__["kernel_size"])
    attrs: dict = {"kernel_size": (kernel,) * nd}
    child: dict = {}
    shrink = (kmax - kernel) // 2
    dilation = conv.__dict__["dilation"]
    if plan.mode == "padding":
        padding = conv.__dict__["padding"]
        if not isinstance(padding, str):
            attrs["padding"] = tuple(p - shrink * d for p, d in zip(padding, dilation))
    elif plan.mode == "pad_child":
        pad = conv._modules[plan.child].padding
        child = {plan.child: {"padding": tuple(p - shrink * dilation[0] for p in pad)}}
    return attrs, child


def supernet_attrs(conv: nn.Module, plan: KernelPlan, kernel: int) -> dict:
    """Attributes the super-network's forward sees at ``kernel`` (none when the kernel is embedded)."""
    if plan.embed or kernel == plan.choices[0]:
        return {}
    return extraction_attrs(conv, plan, kernel)[0]


def _pad_child(conv: nn.Module) -> str | None:
    pads = [
        n
        for n, m in conv.named_children()
        if isinstance(
            m, (nn.ZeroPad2d, nn.ConstantPad2d, nn.ConstantPad1d, nn.ConstantPad3d, nn.ZeroPad1d, nn.ZeroPad3d)
        )
    ]
    return pads[0] if len(pads) == 1 else None


@torch.no_grad()
def _reproduces(conv: nn.Module, plan: KernelPlan, shape: tuple[int, ...]) -> bool:
    """A physically smaller copy (every smaller choice) computes what the zero-embedded kernel computes."""
    base = getattr(type(conv), "_bnas_base", type(conv))
    x = torch.randn((1, *shape[1:]), generator=torch.Generator().manual_seed(0))
    weight = conv._parameters["weight"].detach()
    kmax = plan.choices[0]
    for k in plan.choices[1:]:
        start = (kmax - k) // 2
        small = weight
        for d in range(2, weight.dim()):
            small = small.narrow(d, start, k)
        reference = _plain_copy(conv, base)
        reference._parameters["weight"] = nn.Parameter(F.pad(small, [start, start] * (weight.dim() - 2)))
        candidate = _plain_copy(conv, base)
        candidate._parameters["weight"] = nn.Parameter(small.clone())
        attrs, child = extraction_attrs(conv, plan, k)
        if any(isinstance(p, int) and p < 0 for p in attrs.get("padding", ())):
            return False
        for values in child.values():
            if any(p < 0 for p in values["padding"]):
                return False
        candidate.__dict__.update(attrs)
        for name, values in child.items():
            candidate._modules[name].__dict__.update(values)
        try:
            expected, got = reference.eval()(x), candidate.eval()(x)
        except Exception:  # noqa: BLE001 - this way does not work for this module
            return False
        if expected.shape != got.shape or not torch.allclose(expected, got, atol=1e-4, rtol=1e-4):
            return False
    return True


def _plain_copy(conv: nn.Module, base: type) -> nn.Module:
    """The module as its user's class (no elastic views), on a shallow copy of its attributes."""
    clone = base.__new__(base)
    clone.__dict__.update({k: v for k, v in conv.__dict__.items() if k not in ("_bnas", "_bnas_skip")})
    clone._parameters = dict(conv._parameters)
    clone._modules = {n: copy.deepcopy(m) for n, m in conv._modules.items()}
    return clone


def plan_kernel(
    conv: nn.Module, choices: tuple[int, ...], input_shape: tuple[int, ...]
) -> tuple[KernelPlan | None, str]:
    """The first way of shrinking the kernel that the module's own forward reproduces; else the reason."""
    child = _pad_child(conv)
    candidates = [KernelPlan(choices, "padding"), KernelPlan(choices, "dynamic")]
    if child is not None:
        candidates.append(KernelPlan(choices, "pad_child", child))
    for plan in candidates:
        if _reproduces(conv, plan, input_shape):
            return plan, ""
    padding = conv.__dict__.get("padding")
    if not isinstance(padding, str) and child is None:
        return None, f"padding {tuple(padding)} too small to keep the output shape with a smaller kernel"
    return None, "no smaller module of its class reproduces the output"


def find_kernels(
    model: nn.Module, analysis: AnalysedGraph, max_num_kernels: int, scopes: Mapping[str, Any]
) -> tuple[dict[str, KernelPlan], dict[str, str]]:
    """Kernel plans of every convolution that can have an elastic kernel, and a status line for each convolution."""
    graph = analysis.graph
    plans: dict[str, KernelPlan] = {}
    status: dict[str, str] = {}
    for use in analysis.channels.layers:
        path = use.module
        if use.graph != 0 or use.kind != "conv" or path in status:
            continue
        module = model.get_submodule(path) if path else model
        if matches_scope(path, scopes.get("ignored_scopes")) or (
            scopes.get("target_scopes") and not matches_scope(path, scopes["target_scopes"])
        ):
            status[path] = "not in scope"
            continue
        choices, why = kernel_choices(module, max_num_kernels)
        call = graph.calls.get(path)
        if choices and (
            graph.param_owners.get(use.param, []) != [(path, "weight")] or call is None or len(call.inputs) != 1
        ):
            choices, why = (), "weight used outside its own module's forward"
        if choices:
            plan, why = plan_kernel(module, choices, graph.shape(call.inputs[0]))
            if plan is not None:
                plans[path] = plan
                status[path] = f"elastic {list(choices)} ({plan.mode})"
                continue
        if why:
            logger.info("kernel of %s is not elastic: %s", path, why)
        below = max(getattr(module, "kernel_size", (1,))) < 5
        status[path] = why or (f"kernel {tuple(module.kernel_size)} below 5" if below else "one kernel choice only")
    return plans, status


def add_kernel_transforms(conv: nn.Module, choices: tuple[int, ...]) -> None:
    """Once-for-All's learnable kernel transforms (identity at start, so the centre crop is exact)."""
    conv.__dict__["_bnas"].kernel_choices = tuple(choices)
    weight = conv._parameters["weight"]
    for small, large in zip(choices[1:], choices[:-1]):
        name = f"kernel_transform_{large}to{small}"
        if name not in conv._parameters:
            n = small ** (weight.dim() - 2)
            conv.register_parameter(name, nn.Parameter(torch.eye(n, dtype=weight.dtype, device=weight.device)))
