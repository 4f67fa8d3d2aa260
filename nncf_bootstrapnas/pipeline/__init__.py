"""NNCF-like pipeline: ``create_compressed_model(model, config) -> (controller, model)``.

Algorithms plug in through the registries in ``nncf_bootstrapnas.registry`` and the protocols below.
"""

from nncf_bootstrapnas.pipeline.composite import CompositeController, CompositeScheduler
from nncf_bootstrapnas.pipeline.model_creation import create_compressed_model, planned_algorithms
from nncf_bootstrapnas.pipeline.protocols import AlgorithmBuilder, AlgorithmController, AlgorithmScheduler

__all__ = [
    "AlgorithmBuilder",
    "AlgorithmController",
    "AlgorithmScheduler",
    "CompositeController",
    "CompositeScheduler",
    "create_compressed_model",
    "planned_algorithms",
]
