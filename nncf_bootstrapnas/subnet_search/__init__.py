"""Search for hardware-aware sub-networks of a super-network (pymoo-style: space, objectives, algorithm, result).

``result = search(supernet, cfg.sections.search, validate_fn, val_loader)`` (or a whole Config) measures subnets with LINAS (the default:
predictor-guided, far fewer real evaluations), NSGA2 (legacy NNCF's default), RNSGA2 or random search, and returns a
:class:`SearchResult` with every measurement, the measured Pareto front and the hypervolume history. Importing this package registers the
built-in objectives and algorithms in ``nncf_bootstrapnas.registry``.
"""

from nncf_bootstrapnas.subnet_search.algorithms import LINAS, NSGA2Search, RandomSearch, RNSGA2Search, SearchAlgorithm
from nncf_bootstrapnas.subnet_search.api import search
from nncf_bootstrapnas.subnet_search.constraints import Constraint, ConstraintError, ConstraintSet
from nncf_bootstrapnas.subnet_search.context import EvaluationContext
from nncf_bootstrapnas.subnet_search.evaluator import Evaluator, MeasureSpec, supernet_fingerprint
from nncf_bootstrapnas.subnet_search.facade import BaseSearchAlgorithm
from nncf_bootstrapnas.subnet_search.indicators import HVReference
from nncf_bootstrapnas.subnet_search.objectives import (
    Accuracy,
    FunctionObjective,
    LatencyLut,
    LatencyMs,
    Macs,
    Objective,
    ObjectiveError,
    Params,
    ThroughputFps,
    resolve_objective,
)
from nncf_bootstrapnas.subnet_search.problem import SearchProblem
from nncf_bootstrapnas.subnet_search.result import SearchResult, Selection
from nncf_bootstrapnas.subnet_search.settings import LinasSettings, SearchSettings, search_options

__all__ = [
    "LINAS",
    "Accuracy",
    "BaseSearchAlgorithm",
    "Constraint",
    "ConstraintError",
    "ConstraintSet",
    "EvaluationContext",
    "Evaluator",
    "FunctionObjective",
    "HVReference",
    "LatencyLut",
    "LatencyMs",
    "LinasSettings",
    "Macs",
    "MeasureSpec",
    "NSGA2Search",
    "Objective",
    "ObjectiveError",
    "Params",
    "RNSGA2Search",
    "RandomSearch",
    "SearchAlgorithm",
    "SearchProblem",
    "SearchResult",
    "SearchSettings",
    "Selection",
    "ThroughputFps",
    "resolve_objective",
    "search",
    "search_options",
    "supernet_fingerprint",
]
