"""nncf_bootstrapnas: BootstrapNAS on NNCF 3.

Public API (small on purpose, like ``nncf.quantize``)::

    cfg = load_config("config.json")
    supernet = create_supernet(model, cfg)                 # automatic weight-sharing super-network
    ctrl, supernet = create_compressed_model(model, cfg)   # NNCF-style: elasticity + quantization
    fit(model, TrainingData(train_loader, val_loader), cfg) # built-in progressive-shrinking loop
    save_supernet("supernet.pth", supernet, model=ModelRef(...))  # the one artifact format
    supernet = load_supernet("supernet.pth")               # what search / export / generate / quality start from
    result = search(supernet, cfg, validate_fn, val_loader)
    export(supernet, "out/", config=result.best_config, int8=calibration_loader)
    benchmark("out/openvino/model.xml", input_shape=(1, 3, 32, 32))
    generator = train_generator(supernet, cfg, val_loader=val_loader)   # SGNAS: one subnet per budget, no search
    subnet = generate(supernet, generator, "macs=40e6")
    quality_report(supernet, train_loader, val_loader, cfg)             # does inherited accuracy rank subnets?

search, the generator and the quality report also take a super-network built elsewhere: anything that satisfies
``SearchableSupernet`` (``search_space`` of ``Variable`` choices, ``activate``, ``active_config`` and what the
objectives need; docs/any_supernet.md).

Legacy facades: ``EpochBasedTrainingAlgorithm`` and ``BaseSearchAlgorithm``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Attributes are resolved lazily so that `import nncf_bootstrapnas` stays fast (no torch/openvino import) and each
# stage is imported only when used.
_LAZY = {
    "load_config": "nncf_bootstrapnas.config",
    "Config": "nncf_bootstrapnas.config",
    "ConfigError": "nncf_bootstrapnas.config",
    "create_supernet": "nncf_bootstrapnas.elasticity",
    "SuperNetwork": "nncf_bootstrapnas.elasticity",
    "SearchSpace": "nncf_bootstrapnas.elasticity",
    "Variable": "nncf_bootstrapnas.elasticity",
    "SearchableSupernet": "nncf_bootstrapnas.searchable",
    "create_compressed_model": "nncf_bootstrapnas.pipeline",
    "fit": "nncf_bootstrapnas.training",
    "TrainingData": "nncf_bootstrapnas.training",
    "save_supernet": "nncf_bootstrapnas.training",
    "load_supernet": "nncf_bootstrapnas.training",
    "EpochBasedTrainingAlgorithm": "nncf_bootstrapnas.training",
    "search": "nncf_bootstrapnas.subnet_search",
    "SearchResult": "nncf_bootstrapnas.subnet_search",
    "BaseSearchAlgorithm": "nncf_bootstrapnas.subnet_search",
    "export": "nncf_bootstrapnas.deployment",
    "benchmark": "nncf_bootstrapnas.deployment",
    "train_generator": "nncf_bootstrapnas.generator",
    "generate": "nncf_bootstrapnas.generator",
    "quality_report": "nncf_bootstrapnas.evaluation",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nncf_bootstrapnas' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
