"""``progressive_shrinking``: the builder (pipeline protocol) that turns a model into a super-network and builds its
progressive-shrinking controller."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.registry import TRAINING_ALGORITHMS
from nncf_bootstrapnas.training.bn_adaptation import to_device
from nncf_bootstrapnas.training.contract import find_supernet, is_supernet, max_subnet_copy, model_device
from nncf_bootstrapnas.training.controller import ProgressiveShrinkingController
from nncf_bootstrapnas.training.distillation import FrozenTeacher
from nncf_bootstrapnas.training.settings import parse_training_settings, training_options


@TRAINING_ALGORITHMS.register("progressive_shrinking")
class ProgressiveShrinkingBuilder:
    """Builds the super-network (``create_supernet``) and its progressive-shrinking controller.

    A model that already is a super-network is used as is. The distillation teacher is ``original_model`` when set
    (the plain model the super-network was made from; ``compose`` sets it), else a copy of the plain model given, else
    a copy of the super-network at its maximum subnet (the original model's function before training).
    """

    def __init__(self, config: Any = None, section: Mapping[str, Any] | None = None) -> None:
        self.config = config if config is not None else {}
        # a loaded Config carries the typed section already; a bare section dict is validated here
        use_config = section is None or hasattr(self.config, "sections")
        self.section = training_options(self.config if use_config else section)
        self.original_model: nn.Module | None = None
        self._teacher_model: nn.Module | None = None

    def apply_to(self, model: nn.Module, example_input: Any = None) -> nn.Module:
        kd = self.section.distillation
        if kd is not None and self.original_model is not None:
            self._teacher_model = self.original_model
        if is_supernet(model):
            if kd is not None and self._teacher_model is None:
                self._teacher_model = max_subnet_copy(model)
            return model
        if kd is not None and self._teacher_model is None:  # before create_supernet, which makes modules elastic
            self._teacher_model = copy.deepcopy(model)
        from nncf_bootstrapnas.elasticity import create_supernet

        # Built from a CPU copy, then moved: tracing and the elastic layers' set-up make CPU tensors (the example
        # input, kernel transforms), so the super-network lands on the model's device as a whole.
        device = model_device(model)
        cpu_copy = copy.deepcopy(model).cpu()
        if example_input is not None:
            example_input = to_device(example_input, torch.device("cpu"))
        return create_supernet(cpu_copy, self.config, example_input=example_input, copy_model=False).to(device)

    def build_controller(self, model: nn.Module) -> ProgressiveShrinkingController:
        supernet = find_supernet(model)
        settings = parse_training_settings(self.section, supernet)
        teacher = None
        if settings.kd is not None:
            source = self._teacher_model if self._teacher_model is not None else max_subnet_copy(supernet)
            teacher = FrozenTeacher(source, settings.kd)
        return ProgressiveShrinkingController(model, supernet, settings, teacher)
