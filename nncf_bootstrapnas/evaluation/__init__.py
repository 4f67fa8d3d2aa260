"""Evaluating subnets cheaply and checking the supernet: zero-cost proxies, selection mechanisms, quality report.

Importing this package registers the built-in proxies in ``registry.ZERO_COST_PROXIES`` (and, under the same names, as
search objectives in ``registry.OBJECTIVES``) and the selection mechanisms in ``registry.SELECTION_MECHANISMS``.
"""

from nncf_bootstrapnas.evaluation.measure import (
    finetune,
    first_batch,
    preserved_batchnorm,
    preserved_config,
    recalibrated,
    recalibrated_accuracy,
    recalibrated_bn,
    top1_accuracy,
)
from nncf_bootstrapnas.evaluation.proxies import (
    BUILTIN_PROXIES,
    ProxyError,
    compute_proxy,
    fisher,
    get_proxy,
    grad_norm,
    jacob_cov,
    naswot,
    snip,
    synflow,
)
from nncf_bootstrapnas.evaluation.quality import QualityReport, quality_options, quality_report, stratified_subnets
from nncf_bootstrapnas.evaluation.ranking import (
    kendall_tau,
    rank_agreement,
    sparse_kendall_tau,
    spearman_rho,
    top_k_overlap,
)
from nncf_bootstrapnas.evaluation.selection import (
    DEFAULT_SELECTION,
    BNRecalibratedAccuracy,
    PredictorSelection,
    ProxyObjective,
    ProxySelection,
    SelectionMechanism,
    build_selection,
    prefilter,
    proxy_scores,
    rank_by_proxy,
)

__all__ = [
    "finetune",
    "BUILTIN_PROXIES",
    "DEFAULT_SELECTION",
    "BNRecalibratedAccuracy",
    "PredictorSelection",
    "ProxyError",
    "ProxyObjective",
    "ProxySelection",
    "QualityReport",
    "SelectionMechanism",
    "build_selection",
    "compute_proxy",
    "first_batch",
    "fisher",
    "get_proxy",
    "grad_norm",
    "jacob_cov",
    "kendall_tau",
    "naswot",
    "prefilter",
    "proxy_scores",
    "preserved_batchnorm",
    "preserved_config",
    "quality_options",
    "quality_report",
    "rank_agreement",
    "rank_by_proxy",
    "recalibrated",
    "recalibrated_accuracy",
    "recalibrated_bn",
    "snip",
    "sparse_kendall_tau",
    "spearman_rho",
    "stratified_subnets",
    "synflow",
    "top1_accuracy",
    "top_k_overlap",
]
