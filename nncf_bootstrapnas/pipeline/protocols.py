"""The contracts every training/compression algorithm implements to plug into create_compressed_model.

Structural (typing.Protocol): an algorithm needs no base class, only these methods. Register the builder class::

    @TRAINING_ALGORITHMS.register("my_algo")          # or COMPRESSION_ALGORITHMS
    class MyBuilder:
        def __init__(self, config: Config, section: dict): ...
        def apply_to(self, model, example_input): ...  -> nn.Module
        def build_controller(self, model): ...         -> AlgorithmController
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nncf_bootstrapnas.config import Config


@runtime_checkable
class AlgorithmScheduler(Protocol):
    """Advances an algorithm through training; call epoch_step() at the start of every epoch and step() at the
    start of every iteration (NNCF convention)."""

    def epoch_step(self, epoch: int | None = None) -> None: ...

    def step(self, next_step: int | None = None) -> None: ...

    def get_state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class AlgorithmController(Protocol):
    """Runtime handle of one applied algorithm.

    ``loss()`` is added to the task loss (a zero tensor when the algorithm has none); ``statistics()`` is a
    non-empty dict for logging; ``get_state()`` returns plain JSON data that ``load_state()`` accepts to resume.
    """

    @property
    def scheduler(self) -> AlgorithmScheduler: ...

    def loss(self) -> torch.Tensor: ...

    def statistics(self) -> dict[str, Any]: ...

    def get_state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class AlgorithmBuilder(Protocol):
    """Constructed as ``Builder(config, section)`` where ``section`` is the algorithm's own part of the config
    (``bootstrapNAS.training`` or one ``compression[]`` entry), defaults filled. ``apply_to`` receives the model
    returned by the previous algorithm and ``example_input`` as a tuple of tensors (positional forward() args);
    ``build_controller`` receives the model its own ``apply_to`` returned. Optional attributes that
    ``training.composition.compose`` sets before ``apply_to`` when a builder has them: ``calibration_data`` (batches,
    e.g. for quantization ranges) and ``original_model`` (the plain model before conversion)."""

    def __init__(self, config: Config, section: dict[str, Any]) -> None: ...

    def apply_to(self, model: nn.Module, example_input: Any) -> nn.Module: ...

    def build_controller(self, model: nn.Module) -> AlgorithmController: ...
