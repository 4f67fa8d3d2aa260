"""``quantization`` (QAT) alongside progressive shrinking, with NNCF 3's ``nncf.quantize``.

Why weight quantizers are moved: NNCF 3 inserts a weight FakeQuantize as a pre-hook on the *weight port of the
convolution* (``model/layer/conv2d/0``, port 1), i.e. after our elastic layer sliced the weight, so a per-channel scale
of the full layer no longer matches a narrower subnet. ``FunctionHookMode`` also runs post-hooks registered on a
*parameter name* whenever that ``nn.Parameter`` enters any torch function; the elastic layer's first use of its weight
is the slice (``narrow`` / ``index_select``) or, at full size, the convolution itself. Re-registering each weight
quantizer as a post-hook on its parameter therefore fake-quantizes the full weight first and slices afterwards, so the
per-channel scales stay valid for every width, kernel and depth. Activation quantizers are per-tensor and stay where
NNCF put them.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.config import ConfigError
from nncf_bootstrapnas.registry import COMPRESSION_ALGORITHMS
from nncf_bootstrapnas.training.bn_adaptation import split_batch, to_device
from nncf_bootstrapnas.training.checkpoint import plain
from nncf_bootstrapnas.training.contract import is_supernet, model_device, unwrap

logger = logging.getLogger(__name__)
_PATH = "compression[quantization]"


# ---- hook bookkeeping -----------------------------------------------------------------------------------------------
def is_quantized(model: nn.Module) -> bool:
    from nncf.torch.function_hook.wrapper import is_wrapped

    return is_wrapped(model)


def hook_storage(model: nn.Module) -> nn.Module:
    from nncf.torch.function_hook.wrapper import get_hook_storage

    return get_hook_storage(model)


def _parameter_ports(model: nn.Module, example_input: tuple[torch.Tensor, ...]) -> dict[tuple[str, int], str]:
    """``(op name, input port) -> parameter name`` for every parameter passed straight into an op (one forward)."""
    from nncf.torch.function_hook.hook_executor_mode import FunctionHookMode

    found: dict[tuple[str, int], str] = {}

    class Recorder(FunctionHookMode):
        def execute_pre_hooks(self, args: tuple[Any, ...], kwargs: dict[str, Any], op_meta: Any) -> Any:
            port = 0
            for value in list(args) + list(kwargs.values()):  # NNCF's port numbering
                items = (
                    value if isinstance(value, (list, tuple)) and all(torch.is_tensor(v) for v in value) else [value]
                )
                for item in items:
                    if isinstance(item, nn.Parameter) and id(item) in self.const_name_map:
                        found[(op_meta.op_name, port)] = self.const_name_map[id(item)]
                    port += 1
            return super().execute_pre_hooks(args, kwargs, op_meta)

    forward = model.forward
    modes = {m: m.training for m in model.modules()}
    model.eval()  # a train-mode pass would move BN statistics
    try:
        with torch.no_grad(), Recorder(model=model, hook_storage=hook_storage(model)) as ctx:
            args, kwargs = ctx.process_model_inputs(example_input, {})
            forward.orig_forward(*args, **kwargs)
    finally:
        for module, training in modes.items():
            module.training = training
    return found


def hook_weights_on_parameters(model: nn.Module, example_input: tuple[torch.Tensor, ...]) -> int:
    """Move weight quantizers from op-port pre-hooks to parameter post-hooks (see the module docstring).

    Returns the number moved. A parameter shared by several ops keeps a single quantizer (the others would quantize the
    same tensor again).
    """
    from nncf.torch.function_hook.hook_storage import decode_hook_name

    storage = hook_storage(model)
    ports = _parameter_ports(model, example_input)
    moved, done = 0, set()
    for name, hook in list(storage.named_hooks()):
        kind, op_name, port = decode_hook_name(name)
        param = ports.get((op_name, port)) if kind == "pre_hooks" else None
        if param is None:
            continue
        storage.delete_hook(name)
        if param in done:
            logger.info("weight %s is shared; its extra quantizer at %s is dropped", param, op_name)
            continue
        storage.register_post_function_hook(param, 0, hook)
        done.add(param)
        moved += 1
    return moved


def follow_permutations(model: nn.Module, permuted: Iterable[tuple[torch.Tensor, int, torch.Tensor]] | None) -> int:
    """Reorder the per-channel weight-quantizer tensors (scales, ranges) as a width reorganisation reordered their
    weights (``SuperNetwork.reorganize_weights`` returns ``(parameter, dim, index)``); returns how many were moved.

    Why: a weight quantizer sits beside its parameter (a post-hook, see the module docstring) with one scale per output
    channel. Left in place, every channel is fake-quantized with another channel's scale after the reorganisation: QAT
    then trains around clipped weights, and the float twin (quantizers removed) of the result is no longer the network
    that was trained (EfficientNet-Lite0 on Fashion-MNIST: 6.8% instead of 45%).
    """
    permuted = list(permuted or [])
    if not permuted or "nncf.torch.function_hook.wrapper" not in sys.modules or not is_quantized(model):
        return 0  # (no module loaded: nobody quantized a model in this process, and importing NNCF costs seconds)
    from nncf.torch.function_hook.hook_storage import decode_hook_name

    names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    by_name: dict[str, list[tuple[int, int, torch.Tensor]]] = {}
    for tensor, dim, index in permuted:
        if id(tensor) in names:
            by_name.setdefault(names[id(tensor)], []).append((tensor.ndim, dim, index))
    moved = 0
    with torch.no_grad():
        for hook_name, hook in hook_storage(model).named_hooks():
            kind, op_name, _ = decode_hook_name(hook_name)
            for ndim, dim, index in by_name.get(op_name, []) if kind == "post_hooks" else []:
                for t in [*hook.parameters(), *hook.buffers()]:
                    if t.ndim == ndim and t.shape[dim] == index.numel() > 1:  # per-channel along the permuted dim
                        t.copy_(t.index_select(dim, index.to(t.device)))
                        moved += 1
    return moved


# ---- calibration ----------------------------------------------------------------------------------------------------
def _calibration_items(data: Iterable[Any] | None, example: tuple[torch.Tensor, ...]) -> tuple[Iterable[Any], int]:
    if data is None:
        logger.warning("quantization: no calibration data given; ranges start from the example input only")
        return [example], 1
    return data, int(getattr(data, "batch_size", None) or 1)


def _scopes(section: Mapping[str, Any]) -> Any:
    """Module names (``features.3``) or ``{re}`` patterns -> an nncf.IgnoredScope over NNCF node names."""
    import nncf

    scopes = section.get("ignored_scopes") or []
    scopes = [scopes] if isinstance(scopes, str) else list(scopes)
    patterns = [
        s[4:] if s.startswith("{re}") else "^model/" + "/".join(map(re.escape, s.split("."))) + "/" for s in scopes
    ]
    return nncf.IgnoredScope(patterns=patterns, validate=False) if patterns else None


def _qparams(section: Mapping[str, Any], key: str, path: str) -> Any:
    from nncf.common.quantization.structs import QuantizationScheme
    from nncf.quantization.advanced_parameters import QuantizationParameters

    opts = dict(section.get(key) or {})
    unsupported = sorted(set(opts) & {"ignored_scopes", "target_scopes"})
    if unsupported:
        reason = f"per-{key} scopes are not supported with NNCF 3; use compression[].ignored_scopes"
        raise ConfigError(f"{path}.{key}.{unsupported[0]}", reason, opts[unsupported[0]])
    per_channel = opts.get("per_channel")
    if key == "activations":
        # NNCF would pick per-channel scales for depthwise-convolution inputs; their size would follow the width.
        if per_channel:
            reason = "per-channel activation scales cannot follow elastic width; use per-tensor (false)"
            raise ConfigError(f"{path}.activations.per_channel", reason, per_channel, [False])
        per_channel = False
    mode = opts.get("mode")
    scheme = (
        None if mode is None else QuantizationScheme.SYMMETRIC if mode == "symmetric" else QuantizationScheme.ASYMMETRIC
    )
    return QuantizationParameters(
        num_bits=opts.get("bits"), mode=scheme, signedness_to_force=opts.get("signed"), per_channel=per_channel
    )


def quantize_supernet(
    supernet: nn.Module,
    section: Mapping[str, Any],
    calibration_data: Iterable[Any] | None = None,
    example_input: tuple[torch.Tensor, ...] | None = None,
) -> nn.Module:
    """``nncf.quantize`` calibrated on the maximum subnet, applied to ``supernet`` in place (the same object is
    returned), then weight quantizers moved onto the parameters."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    if section.get("target_scopes"):
        raise ConfigError(f"{_PATH}.target_scopes", "not supported with NNCF 3; list ignored_scopes instead")
    example = tuple(example_input or getattr(supernet, "example_input", None) or ())
    if not example:
        raise ValueError("quantization needs an example input (the super-network's example_input) to place quantizers")
    device = model_device(supernet)
    data, batch = _calibration_items(calibration_data, example)
    num_samples = int(((section.get("initializer") or {}).get("range") or {}).get("num_init_samples", 256))

    def transform(item: Any) -> Any:
        args, kwargs = split_batch(item) if not isinstance(item, tuple) or item is not example else (item, {})
        args, kwargs = to_device(args, device), to_device(kwargs, device)
        return kwargs if kwargs else (args[0] if len(args) == 1 else tuple(args))

    preset = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    advanced = AdvancedQuantizationParameters(
        disable_bias_correction=True,  # bias correction would retune the shared biases for the maximum subnet only
        weights_quantization_params=_qparams(section, "weights", _PATH),
        activations_quantization_params=_qparams(section, "activations", _PATH),
        quantize_outputs=bool(section.get("quantize_outputs", False)),
    )
    previous, training = supernet.active_config, supernet.training
    supernet.activate(None)
    supernet.eval()
    try:
        calibrated = nncf.quantize(
            supernet,
            nncf.Dataset(data, transform),
            preset=preset[section.get("preset", "performance")],
            subset_size=max(1, math.ceil(num_samples / batch)),
            ignored_scope=_scopes(section),
            advanced_parameters=advanced,
        )
        _transplant_hooks(calibrated, supernet)
        # still at the maximum subnet: the hooks must see full weights, whatever subnet the caller had active
        moved = hook_weights_on_parameters(supernet, to_device(example, device))
    finally:
        supernet.activate(previous)
        supernet.train(training)
    logger.info("quantization: %d weight quantizers act on full parameters", moved)
    return supernet


def _transplant_hooks(calibrated: nn.Module, supernet: nn.Module) -> None:
    """Quantize ``supernet`` in place with the quantizers ``nncf.quantize`` calibrated on its deep copy.

    Why in place: the pipeline builds each controller right after its builder's ``apply_to``, so the
    progressive-shrinking controller already holds this object; a copy would leave it driving a model nobody trains.
    """
    from nncf.torch.function_hook.wrapper import wrap_model

    wrap_model(supernet)
    target = hook_storage(supernet)
    for name, hook in hook_storage(calibrated).named_hooks():
        target.insert_hook_by_name(name, hook)
    supernet.load_state_dict(calibrated.state_dict())  # float weights: unchanged unless an NNCF pass retuned them


def restore_quantization(supernet: nn.Module, layout: Mapping[str, Any]) -> nn.Module:
    """Rebuild a quantizer layout saved by :func:`quantizer_layout` (no calibration), in place, on the super-network's
    device; the quantizers' values are loaded separately (they are part of the weights)."""
    from nncf.torch.function_hook.serialization import load_from_config

    if is_quantized(supernet):
        raise ValueError("the super-network is already quantized; restore the quantizer layout on a fresh one")
    return load_from_config(supernet, dict(layout))


def quantizer_layout(model: nn.Module) -> dict[str, Any] | None:
    """Where the quantizers sit and how they are configured (plain JSON), or None for a model without quantizers."""
    from nncf.torch.function_hook.serialization import get_config

    return plain(get_config(model)) if is_quantized(model) else None


def quantizer_state(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """The quantizers' tensors (scales, ...): NNCF keeps them beside the model, outside ``SuperNetwork.state_dict``."""
    if not is_quantized(model):
        return None
    return {k: v.detach().cpu().clone() for k, v in hook_storage(model).state_dict().items()}


# ---- builder and controller -----------------------------------------------------------------------------------------
class _StaticScheduler:
    """Quantization has no schedule (ranges are calibrated once, then trained): the protocol's methods, stateless."""

    def epoch_step(self, next_epoch: int | None = None) -> None:
        return None

    def step(self, next_step: int | None = None) -> None:
        return None

    def get_state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        return None


@COMPRESSION_ALGORITHMS.register("quantization")
class QuantizationBuilder:
    """Top-level ``compression: [{"algorithm": "quantization", ...}]``; ``calibration_data`` (batches for the range
    initialisation) is set by ``compose``. A super-network that already has quantizers (e.g. loaded from a supernet
    artifact) keeps them: no second calibration."""

    def __init__(self, config: Mapping[str, Any] | None = None, section: Mapping[str, Any] | None = None) -> None:
        self.config = config
        self.section = dict(section or {"algorithm": "quantization"})
        self.calibration_data: Iterable[Any] | None = None

    def apply_to(self, model: nn.Module, example_input: Any = None) -> nn.Module:
        target = unwrap(model)
        if not is_supernet(target):
            raise TypeError(
                f"quantization expects the super-network built by progressive_shrinking, got {type(target).__name__}"
            )
        if is_quantized(target):
            return target
        example = example_input if example_input is None or isinstance(example_input, tuple) else (example_input,)
        return quantize_supernet(target, self.section, self.calibration_data, example)

    def build_controller(self, model: nn.Module) -> QuantizationController:
        return QuantizationController(unwrap(model), self.section)


class QuantizationController:
    def __init__(self, model: nn.Module, section: Mapping[str, Any]) -> None:
        if not is_quantized(model):
            raise ValueError("QuantizationController needs a model quantized by QuantizationBuilder.apply_to")
        self.model = model
        self.section = dict(section)
        self.scheduler = _StaticScheduler()

    @property
    def name(self) -> str:
        return "quantization"

    def loss(self) -> torch.Tensor:
        return torch.zeros((), device=model_device(self.model))

    def _quantizers(self) -> tuple[list[nn.Module], list[nn.Module]]:
        from nncf.torch.function_hook.hook_storage import decode_hook_name

        weights, activations = [], []
        for name, hook in hook_storage(self.model).named_hooks():
            kind, op, _ = decode_hook_name(name)
            (weights if kind == "post_hooks" and "/" not in op else activations).append(hook)
        return weights, activations

    def statistics(self, quickly_collected_only: bool = False) -> dict[str, Any]:
        weights, activations = self._quantizers()
        return {
            "algorithm": "quantization",
            "preset": self.section.get("preset", "performance"),
            "weight_quantizers": len(weights),
            "activation_quantizers": len(activations),
            "per_channel_weight_quantizers": sum(bool(getattr(q, "per_channel", False)) for q in weights),
            "bits": sorted({int(q.num_bits) for q in weights + activations if hasattr(q, "num_bits")}),
        }

    def get_state(self) -> dict[str, Any]:
        return {"algorithm": "quantization", "layout": quantizer_layout(self.model)}

    def load_state(self, state: Mapping[str, Any]) -> None:
        if plain(state.get("layout")) != self.get_state()["layout"]:
            raise ValueError(
                "the saved quantizer layout differs from this model's; rebuild it with restore_quantization"
            )
