"""Super-network training: progressive shrinking (legacy stages, sandwich sampling, distillation), BN adaptation,
the supernet artifact, resumable checkpoints, data-parallel training and quantization-aware training.

Importing this package registers ``progressive_shrinking`` in ``registry.TRAINING_ALGORITHMS`` and ``quantization`` in
``registry.COMPRESSION_ALGORITHMS``.
"""

from nncf_bootstrapnas.training.algorithm import ProgressiveShrinkingBuilder
from nncf_bootstrapnas.training.artifact import SupernetArtifact, load_supernet, read_artifact, save_supernet
from nncf_bootstrapnas.training.bn_adaptation import adapt_batchnorm
from nncf_bootstrapnas.training.checkpoint import CheckpointError
from nncf_bootstrapnas.training.composition import Composition, compose
from nncf_bootstrapnas.training.controller import ProgressiveShrinkingController
from nncf_bootstrapnas.training.legacy import EpochBasedTrainingAlgorithm
from nncf_bootstrapnas.training.loop import FitResult
from nncf_bootstrapnas.training.quantization import QuantizationBuilder, QuantizationController
from nncf_bootstrapnas.training.quantized_extraction import extract_quantized
from nncf_bootstrapnas.training.scheduler import BootstrapNASScheduler, StageDescriptor
from nncf_bootstrapnas.training.trainer import TrainingData, fit

__all__ = [
    "BootstrapNASScheduler",
    "CheckpointError",
    "Composition",
    "EpochBasedTrainingAlgorithm",
    "FitResult",
    "ProgressiveShrinkingBuilder",
    "ProgressiveShrinkingController",
    "QuantizationBuilder",
    "QuantizationController",
    "StageDescriptor",
    "SupernetArtifact",
    "TrainingData",
    "adapt_batchnorm",
    "compose",
    "extract_quantized",
    "fit",
    "load_supernet",
    "read_artifact",
    "save_supernet",
]
