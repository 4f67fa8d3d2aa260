"""Embedded data sets for the demo, the tests and the benchmarks (no downloads)."""

from nncf_bootstrapnas.data.digits import IGNORE_INDEX, NUM_CLASSES, DigitsDataModule, digits_loaders, stratified_split

__all__ = ["IGNORE_INDEX", "NUM_CLASSES", "DigitsDataModule", "digits_loaders", "stratified_split"]
