"""Registry names in a config, checked at load against ``nncf_bootstrapnas.registry`` (built-ins loaded first), so a
misspelt algorithm, objective or proxy fails before any model is touched and names registered by user code work.

Each check names the JSON path, the registered alternatives and the closest one ("did you mean").
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from nncf_bootstrapnas.config.errors import ConfigError, join_path, suggest


def check_name(registry: Any, name: Any, path: str, any_case: bool = False) -> str:
    """``name``'s registered spelling (``any_case``: a case-insensitive match counts); ConfigError otherwise."""
    if isinstance(name, str):
        found = registry.canonical(name) if any_case else (name if name in registry else None)
        if found is not None:
            return found
    names = registry.names()
    reason = (
        f"{name!r} is not a registered {registry.kind}{suggest(name, names)}; registered: {', '.join(names) or 'none'}"
    )
    raise ConfigError(path, reason, name, names)


def check_training_names(training: Mapping[str, Any], path: str = "bootstrapNAS.training") -> None:
    from nncf_bootstrapnas.registry import TRAINING_ALGORITHMS

    if "algorithm" in training:
        check_name(TRAINING_ALGORITHMS, training["algorithm"], join_path(path, "algorithm"))


def check_compression_names(entries: list[Mapping[str, Any]], path: str = "compression") -> None:
    from nncf_bootstrapnas.registry import COMPRESSION_ALGORITHMS

    for i, entry in enumerate(entries):
        here = f"{path}[{i}].algorithm"
        if entry["algorithm"] == "knowledge_distillation" and "knowledge_distillation" not in COMPRESSION_ALGORITHMS:
            reason = "knowledge distillation is a loss of super-network training: move it to bootstrapNAS.training.compression"
            raise ConfigError(here, reason, entry["algorithm"], COMPRESSION_ALGORITHMS.names())
        check_name(COMPRESSION_ALGORITHMS, entry["algorithm"], here)


def check_search_names(search: MutableMapping[str, Any], path: str = "bootstrapNAS.search") -> None:
    """Also rewrites the algorithm to its registered spelling (``"nsga2"`` -> ``"NSGA2"``)."""
    from nncf_bootstrapnas.registry import OBJECTIVES, SEARCH_ALGORITHMS, ZERO_COST_PROXIES

    if "algorithm" in search:
        search["algorithm"] = check_name(SEARCH_ALGORITHMS, search["algorithm"], join_path(path, "algorithm"), True)
    for i, objective in enumerate(search.get("objectives", [])):
        if isinstance(objective, str) and not objective.startswith("<objective instance "):
            check_name(OBJECTIVES, objective, f"{path}.objectives[{i}]")
    for i, constraint in enumerate(search.get("constraints", [])):
        check_name(OBJECTIVES, constraint["objective"], f"{path}.constraints[{i}].objective")
    prefilter = search.get("proxy_prefilter")
    if prefilter is not None:
        check_name(ZERO_COST_PROXIES, prefilter["proxy"], f"{path}.proxy_prefilter.proxy")


def check_quality_names(quality: Mapping[str, Any], path: str = "quality_report") -> None:
    from nncf_bootstrapnas.registry import ZERO_COST_PROXIES

    for i, proxy in enumerate(quality.get("proxies", [])):
        check_name(ZERO_COST_PROXIES, proxy, f"{path}.proxies[{i}]")


def check_names(config: MutableMapping[str, Any]) -> None:
    """Every registry name the config sets (schema defaults are built-in names; checking only what is given keeps
    ``load_config`` from importing the stages when no name is set)."""
    bnas = config.get("bootstrapNAS") or {}
    check_training_names(bnas.get("training") or {})
    check_search_names(bnas.get("search") or {})
    check_compression_names(config.get("compression", []))
    check_quality_names(config.get("quality_report", {}))


__all__ = ["check_name", "check_names"]
