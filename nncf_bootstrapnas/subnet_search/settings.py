"""Search options: the typed ``bootstrapNAS.search`` section, plus per-call overrides.

``SearchSettings`` is the legacy name of ``config.SearchSection`` (a frozen dataclass whose ``to_json`` a checkpoint
records, so a resume can refuse an incompatible continuation).
"""

from __future__ import annotations

from typing import Any

from nncf_bootstrapnas.config.search_sections import LinasSection, SearchSection
from nncf_bootstrapnas.config.sections import section_of

SearchSettings = SearchSection
LinasSettings = LinasSection


def search_options(options: Any = None, **overrides: Any) -> SearchSection:
    """The search section of ``options`` (a ``SearchSection``, a loaded ``Config``, a full config dict, a bare
    ``bootstrapNAS.search`` dict or None) with ``overrides`` (JSON keys of the section; ``None`` values are ignored,
    so ``search(..., num_evals=None)`` keeps the config value). Everything is validated like a config file."""
    section = section_of(options, SearchSection)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "num_bn_adaptation_samples" in changes:  # the flat name older code used
        changes["batchnorm_adaptation"] = {"num_bn_adaptation_samples": changes.pop("num_bn_adaptation_samples")}
    return section.replace(**changes) if changes else section


__all__ = ["LinasSettings", "SearchSettings", "search_options"]
