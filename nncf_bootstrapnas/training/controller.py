"""The progressive-shrinking controller: stages, subnet sampling, distillation loss, statistics and plain-JSON state.

It follows the pipeline's ``AlgorithmController`` protocol (``scheduler``, ``loss()``, ``statistics()``,
``get_state()/load_state()``) and keeps the legacy names a ported NNCF 2.x script calls
(``set_training_lr_scheduler_args``, ``prepare_for_validation``, ``get_total_num_epochs``, ``multi_elasticity_handler``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.elasticity.search_space import SubnetConfig
from nncf_bootstrapnas.training.bn_adaptation import adapt_batchnorm
from nncf_bootstrapnas.training.contract import model_device
from nncf_bootstrapnas.training.distillation import FrozenTeacher
from nncf_bootstrapnas.training.quantization import follow_permutations
from nncf_bootstrapnas.training.sampling import subnets_for_step
from nncf_bootstrapnas.training.scheduler import BootstrapNASScheduler, StageDescriptor
from nncf_bootstrapnas.training.settings import TrainingSettings

logger = logging.getLogger(__name__)

ALGORITHM = "progressive_shrinking"


class ProgressiveShrinkingController:
    """Drives a super-network through the stages; see the module docstring for the protocol."""

    def __init__(
        self, model: nn.Module, supernet: nn.Module, settings: TrainingSettings, teacher: FrozenTeacher | None = None
    ) -> None:
        self.model = model
        self.supernet = supernet
        self.settings = settings
        self.teacher = teacher
        self.sampling = settings.sampling
        # True: scheduler.step() activates the step's subnet (legacy loops); fit() samples itself and turns it off.
        self.auto_activate = True
        self.bn_loader: Iterable[Any] | None = None
        self._sample_rate = 1
        self._macs_cache: dict[str, int] = {}
        self._captured: tuple[tuple[Any, ...], dict[str, Any], Any] | None = None
        self._scheduler = BootstrapNASScheduler(self, settings.stages, settings.global_lr)
        self._hook = supernet.register_forward_hook(self._capture, with_kwargs=True) if teacher is not None else None

    # ---- protocol ---------------------------------------------------------------------------------------------------
    @property
    def scheduler(self) -> BootstrapNASScheduler:
        return self._scheduler

    @property
    def name(self) -> str:
        return ALGORITHM

    def _capture(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if module.training and torch.is_grad_enabled():
            self._captured = (args, kwargs, output)

    def loss(self) -> torch.Tensor:
        """Knowledge-distillation loss of the last training forward against the frozen original model (0 without KD).

        Legacy usage: ``loss = criterion(model(x), y) + ctrl.loss()``.
        """
        if self.teacher is None or self._captured is None:
            return torch.zeros((), device=model_device(self.supernet))
        args, kwargs, output = self._captured
        self._captured = None  # release the graph reference
        return self.teacher.loss(output, args, kwargs)

    # ---- stages -----------------------------------------------------------------------------------------------------
    def set_stage(self, desc: StageDescriptor) -> None:
        """Enter a stage (called by the scheduler): dims + indicators, reorganisation, BN adaptation, sample rate."""
        self._apply_stage(desc)
        if desc.reorg_weights:
            self._reorganize_weights()
        if desc.bn_adapt:
            self.supernet.activate(self.supernet.stage_space.maximum())
            self._adapt_bn()
        logger.info("stage %d: train_dims=%s", self._scheduler.current_stage_idx, desc.train_dims)

    def _apply_stage(self, desc: StageDescriptor) -> None:
        self.supernet.set_stage(list(desc.train_dims), desc.width_indicator, desc.depth_indicator)
        self._sample_rate = desc.sample_rate
        self._macs_cache.clear()

    def _reorganize_weights(self) -> None:
        """Reorder channels by importance; momentum of permuted parameters is dropped (it would point elsewhere)."""
        optimizer = self._scheduler.optimizer
        params = [p for p in self.supernet.parameters() if optimizer is not None and p in optimizer.state]
        before = [p.detach().clone() for p in params]
        permuted = self.supernet.reorganize_weights(self.settings.filter_importance)
        follow_permutations(self.supernet, permuted)  # QAT: per-channel weight scales move with their channels
        for p, old in zip(params, before):
            if not torch.equal(p.detach(), old):
                del optimizer.state[p]  # type: ignore[union-attr]

    def _adapt_bn(self) -> None:
        if self.bn_loader is None:
            logger.warning("BN adaptation requested but no data was given (pass bn_loader / train_loader); skipped")
            return
        if self.settings.num_bn_adaptation_samples <= 0:
            return
        adapt_batchnorm(self.supernet, self.bn_loader, self.settings.num_bn_adaptation_samples)

    def prepare_for_validation(self) -> None:
        """Adapt BN statistics to the active subnet before it is evaluated."""
        self._adapt_bn()

    def set_bn_adaptation_data(self, loader: Iterable[Any] | None) -> None:
        self.bn_loader = loader

    def get_total_num_epochs(self) -> int:
        return self._scheduler.get_total_training_epochs()

    def set_training_lr_scheduler_args(self, optimizer: torch.optim.Optimizer | None, train_iters: int) -> None:
        self._scheduler.attach_optimizer(optimizer, train_iters)

    def is_final_stage(self) -> bool:
        return self._scheduler.is_final_stage()

    @property
    def multi_elasticity_handler(self) -> Any:
        """Legacy name: activate_minimum_subnet(), activate_subnet_for_config(cfg), get_active_config(), ..."""
        return ElasticityHandler(self)

    # ---- sampling ---------------------------------------------------------------------------------------------------
    def subnets_for_step(self, step: int) -> list[tuple[str, SubnetConfig]]:
        return subnets_for_step(self.supernet.stage_space, self.sampling, step, self._sample_rate)

    def on_step(self, step: int) -> None:
        """Legacy path: one subnet per ``scheduler.step()``; ``sandwich`` rotates max, min, random across steps."""
        if not self.auto_activate:
            return
        n = self.sampling.subnets_per_step
        group = self.subnets_for_step(step // n)
        self.supernet.activate(group[(step % n) % len(group)][1])

    # ---- statistics -------------------------------------------------------------------------------------------------
    def macs(self, cfg: SubnetConfig | None) -> int:
        key = json.dumps(cfg, sort_keys=True)
        if key not in self._macs_cache:
            self._macs_cache[key] = int(self.supernet.macs(cfg))
        return self._macs_cache[key]

    def statistics(self, quickly_collected_only: bool = False) -> dict[str, Any]:
        """Stage, counters, rate, active subnet summary, MACs (active/max/min) and search-space sizes."""
        sched = self._scheduler
        idx = sched.current_stage_idx
        desc = sched.list_stage_descriptors[idx] if idx >= 0 else None
        active = self.supernet.active_config
        stage_space, space = self.supernet.stage_space, self.supernet.search_space
        optimizer = sched.optimizer
        stats: dict[str, Any] = {
            "algorithm": ALGORITHM,
            "stage": {
                "index": idx,
                "num_stages": len(sched.list_stage_descriptors),
                "is_final": sched.is_final_stage(),
                "train_dims": list(desc.train_dims) if desc else [],
                "width_indicator": desc.width_indicator if desc else None,
                "depth_indicator": desc.depth_indicator if desc else None,
            },
            "epoch": sched.current_epoch,
            "step": sched.current_step,
            "total_epochs": sched.get_total_training_epochs(),
            "lr": sched.current_lr() if optimizer is None else float(optimizer.param_groups[0]["lr"]),
            "sampling": self.sampling.strategy,
            "active_subnet": summarize_config(active, space),
            "search_space": {"size": space.size, "stage_size": stage_space.size, "num_variables": len(space)},
        }
        if not quickly_collected_only:
            stats["macs"] = {
                "active": self.macs(active),
                "max": self.macs(stage_space.maximum()),
                "min": self.macs(stage_space.minimum()),
            }
        return stats

    # ---- state ------------------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "algorithm": ALGORITHM,
            "scheduler": self._scheduler.get_state(),
            "sampling": self.sampling.to_json(),
            "progressivity_of_elasticity": list(self.settings.progressivity),
            "knowledge_distillation": None if self.settings.kd is None else self.settings.kd.to_json(),
            "active_config": self.supernet.active_config,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore counters and re-apply the current stage's restriction (no reorganisation, no BN adaptation: the
        weights and statistics come from the same checkpoint)."""
        if state.get("algorithm", ALGORITHM) != ALGORITHM:
            raise ValueError(f"controller state is for {state.get('algorithm')!r}, not {ALGORITHM!r}")
        self._scheduler.load_state(state["scheduler"])
        idx = self._scheduler.current_stage_idx
        if idx >= 0:
            self._apply_stage(self._scheduler.list_stage_descriptors[idx])
        if state.get("active_config") is not None:
            self.supernet.activate(state["active_config"])

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


def summarize_config(cfg: SubnetConfig, space: Any) -> dict[str, Any]:
    """Per dimension: how many variables sit at their maximum / minimum; for width also the active channel share."""
    summary: dict[str, Any] = {}
    for dim in ("kernel", "width", "depth"):
        variables = [v for v in space.variables if v.dim == dim]
        if not variables:
            continue
        values = [cfg.get(dim, {}).get(v.key, v.maximum) for v in variables]
        entry: dict[str, Any] = {
            "variables": len(variables),
            "at_max": sum(val == v.maximum for val, v in zip(values, variables)),
            "at_min": sum(val == v.minimum for val, v in zip(values, variables)),
        }
        if dim == "width":
            entry["channel_ratio"] = round(sum(values) / max(1, sum(v.maximum for v in variables)), 4)
        if dim == "depth":
            entry["skipped_blocks"] = sum(values)
        summary[dim] = entry
    return summary


class ElasticityHandler:
    """Legacy ``multi_elasticity_handler`` calls, on our super-network."""

    def __init__(self, controller: ProgressiveShrinkingController) -> None:
        self._ctrl = controller
        self._supernet = controller.supernet

    def activate_supernet(self) -> None:
        self._supernet.activate(None)

    def activate_maximum_subnet(self) -> None:
        self._supernet.activate(self._supernet.stage_space.maximum())

    def activate_minimum_subnet(self) -> None:
        self._supernet.activate(self._supernet.stage_space.minimum())

    def activate_random_subnet(self) -> None:
        step = max(self._ctrl.scheduler.current_step, 0)
        self._supernet.activate(self._ctrl.subnets_for_step(step)[-1][1])

    def activate_subnet_for_config(self, config: dict[str, Any]) -> None:
        self._supernet.activate(config)

    def get_active_config(self) -> dict[str, Any]:
        return self._supernet.active_config

    def count_flops_and_weights_for_active_subnet(self) -> tuple[int, int]:
        """Legacy returned FLOPs = 2 x MACs (its example divides by 2e6 to print MMACs) and the weight count."""
        cfg = self._supernet.active_config
        return 2 * self._ctrl.macs(cfg), int(self._supernet.params(cfg))
