"""Build the training objects from a model and a config, or rebuild them from a checkpoint (shared by ``fit`` and the
legacy facade)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.config import Config, load_config
from nncf_bootstrapnas.registry import COMPRESSION_ALGORITHMS
from nncf_bootstrapnas.training.algorithm import (
    ProgressiveShrinkingBuilder,
    build_training,
    compression_entries,
    find_supernet,
    is_supernet,
)
from nncf_bootstrapnas.training.checkpoint import (
    CheckpointError,
    check_search_space,
    check_state_dict,
    make_checkpoint,
    plain,
)
from nncf_bootstrapnas.training.controller import ProgressiveShrinkingController


def normalize_config(config: Any) -> Config:
    """A validated Config with schema defaults (None -> defaults; a dict or a path is loaded)."""
    if isinstance(config, Config):
        return config
    return load_config({} if config is None else config)


@dataclass
class TrainingSession:
    model: nn.Module  # what is trained: the super-network, quantized when configured
    controller: ProgressiveShrinkingController
    compression: list[Any]  # controllers of the top-level compression algorithms
    config: Config

    @property
    def supernet(self) -> nn.Module:
        return find_supernet(self.model)

    def all_controllers(self) -> list[Any]:
        return [self.controller, *self.compression]

    def compression_loss(self) -> torch.Tensor:
        loss = self.controller.loss()
        for ctrl in self.compression:
            loss = loss + ctrl.loss()
        return loss

    def statistics(self, quickly_collected_only: bool = False) -> dict[str, Any]:
        stats = {self.controller.name: self.controller.statistics(quickly_collected_only)}
        for ctrl in self.compression:
            stats[getattr(ctrl, "name", type(ctrl).__name__)] = ctrl.statistics(quickly_collected_only)
        return stats

    def checkpoint(self, optimizer: torch.optim.Optimizer | None, *, rng: list[Any], **fields: Any) -> dict[str, Any]:
        supernet = self.supernet
        ckpt = make_checkpoint(
            supernet, self.controller.get_state(), optimizer, rng=rng, training_config=self.config, **fields
        )
        ckpt["compression"] = [plain(c.get_state()) for c in self.compression]
        ckpt["hook_state"] = _hook_state(supernet)
        return ckpt


def _hook_state(supernet: nn.Module) -> dict[str, torch.Tensor] | None:
    """Quantizer tensors: NNCF keeps them beside the model (``SuperNetwork.state_dict`` holds the model's only)."""
    storage = getattr(supernet, "__nncf_hooks", None)
    if storage is None:
        return None
    return {k: v.detach().clone() for k, v in storage.state_dict().items()}


def build_session(
    model: nn.Module,
    config: Any,
    example_input: Any = None,
    calibration_data: Iterable[Any] | None = None,
) -> TrainingSession:
    config = normalize_config(config)
    controller, trained, compression = build_training(model, config, example_input, calibration_data)
    return TrainingSession(trained, controller, compression, config)


def resume_session(model: nn.Module, ckpt: Mapping[str, Any], config: Any = None) -> TrainingSession:
    """Rebuild the session a checkpoint was saved from, around ``model`` (the original model or a fresh super-network).

    Quantizers are restored from the saved layout (no calibration). Raises CheckpointError naming what differs when
    the checkpoint belongs to another model or elasticity config.
    """
    config = normalize_config(config if config is not None else ckpt.get("training_config") or {})
    builder = ProgressiveShrinkingBuilder(config)
    if is_supernet(model):
        check_search_space(ckpt, model)
        supernet = builder.apply_to(model)
    else:
        if builder_kd(builder):
            builder._teacher_model = copy.deepcopy(model)
        supernet = _supernet_from_checkpoint(model, ckpt, config)
        builder.supernet = supernet
    trained: nn.Module = supernet
    saved = list(ckpt.get("compression") or [])
    builders = []
    for i, entry in enumerate(compression_entries(config)):
        comp = COMPRESSION_ALGORITHMS.get(entry["algorithm"])(config, entry)
        state = saved[i] if i < len(saved) else None
        if hasattr(comp, "restore_layout"):
            if not state or "layout" not in state:
                raise CheckpointError(f"compression[{i}] ({entry['algorithm']}) has no saved state in the checkpoint")
            comp.restore_layout = state["layout"]
        trained = comp.apply_to(trained)
        builders.append(comp)
    controller = builder.build_controller(trained)
    compression = [b.build_controller(trained) for b in builders]
    load_weights(ckpt, find_supernet(trained))
    controller.load_state(ckpt["controller"])
    return TrainingSession(trained, controller, compression, config)


def _supernet_from_checkpoint(model: nn.Module, ckpt: Mapping[str, Any], config: Config) -> nn.Module:
    """Rebuild the checkpoint's super-network around a plain model, after checking that the model is the same
    architecture (parameter names and shapes) and that ``config`` gives the same search space."""
    from nncf_bootstrapnas.elasticity import SuperNetwork, create_supernet

    saved = {k: v for k, v in ckpt["model_state"].items() if "kernel_transform_" not in k}  # added by elasticity
    check_state_dict(saved, model)
    state = ckpt["elasticity"]
    try:
        example = tuple(torch.zeros(e["shape"], dtype=getattr(torch, e["dtype"])) for e in state["example_input"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"the checkpoint's elasticity state has no usable example_input: {exc}") from exc
    check_search_space(ckpt, create_supernet(model, config, example_input=example), where="checkpoint")
    try:
        return SuperNetwork.from_state(model, state)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint's super-network does not fit this model: {exc}") from exc


def builder_kd(builder: ProgressiveShrinkingBuilder) -> bool:
    return bool(builder.section.get("compression"))


def load_weights(ckpt: Mapping[str, Any], supernet: nn.Module) -> None:
    check_state_dict(ckpt["model_state"], supernet)
    supernet.load_state_dict(ckpt["model_state"], strict=True)
    hooks = ckpt.get("hook_state")
    storage = getattr(supernet, "__nncf_hooks", None)
    if (hooks is None) != (storage is None):
        which = "quantized" if hooks is not None else "not quantized"
        raise CheckpointError(f"the checkpoint's super-network is {which}, this one is not; check 'compression'")
    if storage is not None:
        check_state_dict(hooks, storage, where="checkpoint's quantizers")
        storage.load_state_dict(hooks, strict=True)


def rebind_optimizer(optimizer: torch.optim.Optimizer, original: nn.Module, trained: nn.Module) -> int:
    """Point an optimizer made for ``original`` at the parameters of ``trained`` (matched by name); returns how many
    parameters were re-bound.

    Why: a legacy script builds its optimizer before conversion, but the super-network (and ``nncf.quantize``) work on
    copies. Parameters the optimizer did not know (quantizer scales, kernel transforms) join it in an extra group with
    its defaults, so they are trained too.
    """
    own = {id(p) for p in trained.parameters()}
    names = {id(p): n for n, p in original.named_parameters()}
    by_name = dict(trained.named_parameters())
    rebound = 0
    for group in optimizer.param_groups:
        params = []
        for p in group["params"]:
            if id(p) in own:
                params.append(p)
                continue
            name = names.get(id(p))
            target = None if name is None else by_name.get(name, by_name.get(f"model.{name}"))
            if target is None:
                raise ValueError(
                    f"optimizer parameter {name or tuple(p.shape)} is not a parameter of the trained super-network; "
                    "build the optimizer from the model passed to training (or from the super-network)"
                )
            if p in optimizer.state:
                optimizer.state[target] = optimizer.state.pop(p)
            params.append(target)
            rebound += 1
        group["params"] = params
    known = {id(p) for g in optimizer.param_groups for p in g["params"]}
    extra = [p for p in trained.parameters() if p.requires_grad and id(p) not in known]
    if extra:
        optimizer.add_param_group({"params": extra})
    return rebound
