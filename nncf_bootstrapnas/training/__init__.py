"""Super-network training: progressive shrinking (legacy stages, sandwich sampling, distillation), BN adaptation,
resumable checkpoints, data-parallel training and quantization-aware training.

Importing this package registers ``progressive_shrinking`` in ``registry.TRAINING_ALGORITHMS`` and ``quantization`` in
``registry.COMPRESSION_ALGORITHMS``.
"""

from nncf_bootstrapnas.training.algorithm import ProgressiveShrinkingBuilder, build_training
from nncf_bootstrapnas.training.bn_adaptation import adapt_batchnorm
from nncf_bootstrapnas.training.checkpoint import CheckpointError
from nncf_bootstrapnas.training.controller import ProgressiveShrinkingController
from nncf_bootstrapnas.training.legacy import EpochBasedTrainingAlgorithm
from nncf_bootstrapnas.training.quantization import QuantizationBuilder, QuantizationController
from nncf_bootstrapnas.training.quantized_extraction import extract_quantized
from nncf_bootstrapnas.training.scheduler import BootstrapNASScheduler, StageDescriptor
from nncf_bootstrapnas.training.trainer import FitResult, fit

__all__ = [
    "BootstrapNASScheduler",
    "CheckpointError",
    "EpochBasedTrainingAlgorithm",
    "FitResult",
    "ProgressiveShrinkingBuilder",
    "ProgressiveShrinkingController",
    "QuantizationBuilder",
    "QuantizationController",
    "StageDescriptor",
    "adapt_batchnorm",
    "build_training",
    "extract_quantized",
    "fit",
]
