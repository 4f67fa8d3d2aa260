"""SGNAS-style architecture generator: one network maps a constraint (e.g. a MACs budget) to a subnet in one pass.

gen = train_generator(supernet, cfg.sections.generator, predictor=search_result)  # or val_loader=/train_loader=/nothing
cfg = generate(supernet, gen, "macs=40e6")                      # deterministic, validated subnet config
state = gen.get_state(); gen2 = ArchitectureGenerator.from_state(supernet.search_space, state)
"""

from nncf_bootstrapnas.generator.cost import CostModel
from nncf_bootstrapnas.generator.model import ArchitectureGenerator, GeneratorError
from nncf_bootstrapnas.generator.predictor import AccuracyPredictor, rows_to_xy
from nncf_bootstrapnas.generator.train import (
    evaluate_generator,
    generate,
    generator_options,
    random_baseline,
    train_generator,
)

__all__ = [
    "AccuracyPredictor",
    "ArchitectureGenerator",
    "CostModel",
    "GeneratorError",
    "evaluate_generator",
    "generate",
    "generator_options",
    "random_baseline",
    "rows_to_xy",
    "train_generator",
]
