"""CompositeController: several algorithms driven as one (NNCF's CompositeCompressionAlgorithmController)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from nncf_bootstrapnas.pipeline.protocols import AlgorithmController, AlgorithmScheduler


def _check_names(kind: str, state: Mapping[str, Any], names: list[str]) -> None:
    if not isinstance(state, Mapping):
        raise TypeError(f"{kind} state must be a dict keyed by algorithm name, got {type(state).__name__}")
    missing = [n for n in names if n not in state]
    unexpected = [n for n in state if n not in names]
    if missing or unexpected:
        raise ValueError(
            f"{kind} state does not match the algorithms of this pipeline {names}: "
            f"missing {missing or 'none'}, unexpected {unexpected or 'none'} "
            "(was it saved from a pipeline built with another config?)"
        )


def _json_checked(kind: str, name: str, state: Any) -> Any:
    """States go into checkpoints as JSON; fail at save time, naming the culprit, not at load time."""
    try:
        json.dumps(state)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{kind} state of algorithm {name!r} is not plain JSON data: {exc}") from None
    return state


class CompositeScheduler:
    """Steps every algorithm's scheduler, in build order."""

    def __init__(self, schedulers: Mapping[str, AlgorithmScheduler]) -> None:
        self._schedulers = dict(schedulers)

    def epoch_step(self, epoch: int | None = None) -> None:
        for scheduler in self._schedulers.values():
            scheduler.epoch_step(epoch)

    def step(self, next_step: int | None = None) -> None:
        for scheduler in self._schedulers.values():
            scheduler.step(next_step)

    def get_state(self) -> dict[str, Any]:
        return {n: _json_checked("scheduler", n, s.get_state()) for n, s in self._schedulers.items()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        _check_names("scheduler", state, list(self._schedulers))
        for name, scheduler in self._schedulers.items():
            scheduler.load_state(state[name])


class CompositeController:
    """Controllers of several algorithms, keyed by algorithm name in build order.

    loss() is the sum of the children's losses; statistics() merges the children's with ``"<name>/<key>"`` keys;
    get_state()/load_state() use ``{name: child_state}``. ``composite["quantization"]`` returns one child.
    """

    def __init__(self, controllers: Mapping[str, AlgorithmController]) -> None:
        self._controllers = dict(controllers)
        self._scheduler = CompositeScheduler({n: c.scheduler for n, c in self._controllers.items()})

    @property
    def scheduler(self) -> CompositeScheduler:
        return self._scheduler

    @property
    def controllers(self) -> dict[str, AlgorithmController]:
        return dict(self._controllers)

    @property
    def names(self) -> list[str]:
        return list(self._controllers)

    def __getitem__(self, name: str) -> AlgorithmController:
        try:
            return self._controllers[name]
        except KeyError:
            raise KeyError(f"no algorithm {name!r} in this pipeline; algorithms: {self.names}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._controllers

    def __iter__(self) -> Iterator[str]:
        return iter(self._controllers)

    def __len__(self) -> int:
        return len(self._controllers)

    def loss(self) -> torch.Tensor:
        total: torch.Tensor | None = None
        for controller in self._controllers.values():
            value = controller.loss()
            total = value if total is None else total + value
        return torch.zeros(()) if total is None else total

    def statistics(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for name, controller in self._controllers.items():
            merged.update({f"{name}/{key}": value for key, value in controller.statistics().items()})
        return merged or {"algorithms": []}

    def get_state(self) -> dict[str, Any]:
        return {n: _json_checked("controller", n, c.get_state()) for n, c in self._controllers.items()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        _check_names("controller", state, self.names)
        for name, controller in self._controllers.items():
            controller.load_state(state[name])

    def __repr__(self) -> str:
        return f"CompositeController({self.names})"
