"""Extracting a quantization-aware subnet: the plain subnet plus its quantizers, sliced to the channels it keeps."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.training.bn_adaptation import model_device
from nncf_bootstrapnas.training.quantization import hook_storage, is_quantized


def slice_quantizer(quantizer: nn.Module, module: nn.Module) -> nn.Module:
    """A copy of a per-channel weight quantizer keeping the channels the elastic ``module`` keeps."""
    shape = tuple(quantizer.scale_shape)
    if math.prod(shape) == 1:
        return copy.deepcopy(quantizer)
    s = module._bnas
    transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
    out_dim, in_dim = (1, 0) if transposed else (0, 1)
    steps = [(0, s.channel_index), (out_dim, s.out_index), (in_dim, s.in_index)]
    state = quantizer.state_dict()
    for key, value in state.items():
        if tuple(value.shape) == shape:
            for dim, index in steps:
                if index is not None and value.shape[dim] > 1:
                    value = (
                        value.narrow(dim, index.start, index.stop - index.start)
                        if isinstance(index, slice)
                        else value.index_select(dim, index)
                    )
            state[key] = value.clone()
    new_shape = next(tuple(v.shape) for k, v in state.items() if tuple(quantizer.state_dict()[k].shape) == shape)
    config = dict(quantizer.get_config())
    config["scale_shape"] = list(new_shape) if isinstance(config.get("scale_shape"), list) else new_shape
    sliced = type(quantizer).from_config(config)
    sliced.load_state_dict(state)
    return sliced.to(model_device(quantizer) if list(quantizer.parameters()) else torch.device("cpu")).train(
        quantizer.training
    )


def _module_path(op_name: str) -> str:
    """``model/features/0/conv2d/0`` -> ``model.features.0`` (drop the function name and call index)."""
    return ".".join(op_name.split("/")[:-2])


def _submodule(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        return None


@torch.no_grad()
def extract_quantized(supernet: nn.Module, config: Mapping[str, Any] | None = None) -> nn.Module:
    """The QAT subnet as a plain model with its quantizers: same eval outputs as the quantized super-network.

    ``supernet.extract`` copies the float weights; the quantizers are then carried over: per-channel weight quantizers
    keep the channels the subnet keeps, activation quantizers are copied. A convolution running a smaller kernel than
    its maximum gets its weight baked instead (fake-quantized full kernel, cropped and transformed), because quantizing
    the transformed kernel again would not reproduce the super-network.
    """
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.wrapper import register_post_function_hook, register_pre_function_hook, wrap_model

    from nncf_bootstrapnas.elasticity.modules import is_elastic

    if not is_quantized(supernet):
        return supernet.extract(config)
    previous = supernet.active_config
    if config is not None:
        supernet.activate(config)
    try:
        sub = wrap_model(supernet.extract(None))
        for name, hook in hook_storage(supernet).named_hooks():
            kind, op, port = decode_hook_name(name)
            if kind == "post_hooks" and "/" not in op:  # a parameter: 'model.<module path>.<param>'
                if not op.startswith("model."):
                    continue
                path, pname = op[len("model.") :].rsplit(".", 1)
                target, module = _submodule(sub, path), supernet.model.get_submodule(path)
                if target is None or not hasattr(target, pname):
                    continue  # inside a skipped block
                kernel = getattr(getattr(module, "_bnas", None), "kernel", None)
                if kernel is not None and kernel != getattr(module, "max_kernel", kernel):
                    weight = getattr(module, pname)
                    original = weight.detach().clone()
                    weight.copy_(hook(weight))
                    baked = module.to_static()
                    weight.copy_(original)
                    sub.set_submodule(path, baked)
                    continue
                quantizer = slice_quantizer(hook, module) if is_elastic(module) else copy.deepcopy(hook)
                register_post_function_hook(sub, f"{path}.{pname}", port, quantizer)
                continue
            new_op = op[len("model/") :] if op.startswith("model/") else op
            if "/" in op and _submodule(sub, _module_path(new_op)) is None:
                continue  # an op inside a skipped block
            register = register_pre_function_hook if kind == "pre_hooks" else register_post_function_hook
            register(sub, new_op, port, copy.deepcopy(hook))
        return sub.eval() if not supernet.training else sub
    finally:
        supernet.activate(previous)
