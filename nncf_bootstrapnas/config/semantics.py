"""Checks that need more than one key at a time (run after schema validation and default filling).

Each raises ConfigError with the JSON path of the offending value, so a user can find it in the file.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from nncf_bootstrapnas.config.errors import ConfigError, join_path

TRAINING_PATH = "bootstrapNAS.training"
SEARCH_PATH = "bootstrapNAS.search"
STAGES_PATH = f"{TRAINING_PATH}.schedule.list_stage_descriptions"
ELASTICITY_PATH = f"{TRAINING_PATH}.elasticity"


def validate_stage_schedule(
    stages: Sequence[Mapping[str, Any]],
    progressivity: Sequence[str],
    available: Sequence[str],
    path: str = STAGES_PATH,
    note: str = "",
) -> None:
    """Check a progressive-shrinking schedule the way NNCF's BootstrapNASScheduler did.

    Every train_dims entry must be an available dimension listed in ``progressivity``; each stage's dimensions must
    be consecutive in ``progressivity`` (dimensions that are not available are skipped over; the order inside
    train_dims does not matter); and each stage must keep all dimensions of the previous stage, so stages only add
    dimensions. Also checks epochs/indicators, for schedules built in code. ``note`` is appended to messages.
    """
    order = [d for d in progressivity if d in available]
    prev: list[str] = []
    prev_lo, prev_hi = len(order), -1
    for i, stage in enumerate(stages):
        here = f"{path}[{i}]"
        for key in ("epochs", "depth_indicator", "width_indicator", "sample_rate"):
            value = stage.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{here}.{key}", f"{value!r} must be a positive integer{note}", value)
        dims = list(stage.get("train_dims") or [])
        if not dims:
            raise ConfigError(f"{here}.train_dims", f"at least one elasticity dimension is required{note}", dims)
        for j, dim in enumerate(dims):
            if dim not in available:
                reason = f"{dim!r} is not an available elasticity dimension; available: {', '.join(available)}"
                raise ConfigError(f"{here}.train_dims[{j}]", reason + note, dim, list(available))
            if dim not in progressivity:
                reason = f"{dim!r} is missing from progressivity_of_elasticity {list(progressivity)}"
                raise ConfigError(f"{here}.train_dims[{j}]", reason + note, dim, list(progressivity))
        idx = sorted({order.index(d) for d in dims})
        lo, hi = idx[0], idx[-1]
        gaps = [order[k] for k in range(lo, hi + 1) if k not in idx]
        if gaps:
            reason = (
                f"{dims} skips {', '.join(map(repr, gaps))}, which comes between {order[lo]!r} and {order[hi]!r} in "
                f"progressivity_of_elasticity {order}; enabled dimensions must be consecutive in that order"
            )
            raise ConfigError(f"{here}.train_dims", reason + note, dims, order)
        if lo > prev_lo or hi < prev_hi:
            dropped = [d for d in prev if d not in dims]
            reason = (
                f"{dims} drops {', '.join(map(repr, dropped))} enabled in stage {i - 1} {prev}; stages may only add "
                f"dimensions, following progressivity_of_elasticity {order}"
            )
            raise ConfigError(f"{here}.train_dims", reason + note, dims, order)
        prev, prev_lo, prev_hi = dims, lo, hi


def default_schedule(
    available: Sequence[str], progressivity: Sequence[str], templates: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """The schedule used when a config has none: legacy NNCF's stages for the dimensions that are available.

    Dimensions are added one at a time in ``progressivity`` order; each adds the stages of its template (from the
    schema's ``x-default-stages``). With kernel, depth and width available this is NNCF's five-stage schedule; with
    width and depth only, the depth and width stages.
    """
    stages: list[dict[str, Any]] = []
    dims: list[str] = []
    for dim in (d for d in progressivity if d in available):
        dims = [*dims, dim]
        stages += [{"train_dims": list(dims), **copy.deepcopy(dict(extra))} for extra in templates.get(dim, [{}])]
    return stages


def _check_scopes(section: Mapping[str, Any], path: str) -> None:
    for key in ("ignored_scopes", "target_scopes"):
        scopes = section.get(key)
        items = [scopes] if isinstance(scopes, str) else list(scopes or [])
        for i, scope in enumerate(items):
            if scope.startswith("{re}"):
                try:
                    re.compile(scope[4:])
                except re.error as exc:
                    where = join_path(path, key) + ("" if isinstance(scopes, str) else f"[{i}]")
                    raise ConfigError(where, f"invalid regular expression {scope[4:]!r}: {exc}", scope) from None


def check_training(training: Mapping[str, Any], schedule_defaulted: bool = False) -> None:
    progressivity = training["progressivity_of_elasticity"]
    elasticity = training["elasticity"]
    available = elasticity["available_elasticity_dims"]
    for i, dim in enumerate(available):
        if dim not in progressivity:
            reason = (
                f"{dim!r} is available but missing from {TRAINING_PATH}.progressivity_of_elasticity {progressivity}; "
                "add it there so the schedule knows when to enable it"
            )
            raise ConfigError(f"{ELASTICITY_PATH}.available_elasticity_dims[{i}]", reason, dim, progressivity)
    stages = training["schedule"]["list_stage_descriptions"]
    note = ""
    if schedule_defaulted:
        note = " (this is the default schedule derived from available_elasticity_dims; set schedule.list_stage_descriptions)"
    validate_stage_schedule(stages, progressivity, available, note=note)
    lr_schedule = training.get("lr_schedule")
    if lr_schedule is not None:
        for i, stage in enumerate(stages):
            if "init_lr" in stage:
                reason = "a stage learning rate cannot be set while the global lr_schedule is in use; remove one"
                raise ConfigError(f"{STAGES_PATH}[{i}].init_lr", reason, stage["init_lr"])
        if lr_schedule["type"] == "multistep" and "milestones" not in lr_schedule["params"]:
            raise ConfigError(f"{TRAINING_PATH}.lr_schedule.params", "missing 'milestones', required by type multistep")
    width, depth = elasticity["width"], elasticity["depth"]
    groups, widths = width.get("overwrite_groups"), width.get("overwrite_groups_widths")
    if (groups is None) != (widths is None):
        given, missing = "overwrite_groups", "overwrite_groups_widths"
        if groups is None:
            given, missing = missing, given
        raise ConfigError(f"{ELASTICITY_PATH}.width", f"{given} is set but {missing} is not; set both or neither")
    if groups is not None and len(groups) != len(widths):
        reason = f"has {len(widths)} entries but overwrite_groups has {len(groups)}; give one width list per group"
        raise ConfigError(f"{ELASTICITY_PATH}.width.overwrite_groups_widths", reason, widths)
    if width["filter_importance"] == "external" and "external_importance_path" not in width:
        raise ConfigError(f"{ELASTICITY_PATH}.width", "filter_importance 'external' requires external_importance_path")
    if depth["min_block_size"] > depth["max_block_size"]:
        reason = f"{depth['min_block_size']} is greater than max_block_size {depth['max_block_size']}"
        raise ConfigError(f"{ELASTICITY_PATH}.depth.min_block_size", reason, depth["min_block_size"])
    _check_scopes(elasticity, ELASTICITY_PATH)


def check_search(search: Mapping[str, Any]) -> None:
    objectives = search["objectives"]
    points = search.get("aspiration_points")
    if search["algorithm"] == "RNSGA2" and not points:
        raise ConfigError(f"{SEARCH_PATH}.aspiration_points", "required when algorithm is 'RNSGA2'")
    for i, point in enumerate(points or []):
        if len(point) != len(objectives):
            reason = f"has {len(point)} coordinate(s) but there are {len(objectives)} objectives {objectives}"
            raise ConfigError(f"{SEARCH_PATH}.aspiration_points[{i}]", reason, point)
    weights = search.get("weights")
    if isinstance(weights, list) and len(weights) != len(objectives):
        reason = f"has {len(weights)} value(s) but there are {len(objectives)} objectives {objectives}"
        raise ConfigError(f"{SEARCH_PATH}.weights", reason, weights)


def check_algorithm_names(config: Mapping[str, Any]) -> None:
    """Algorithm names key the pipeline's state, so they must be unique."""
    seen: dict[str, str] = {}
    if "bootstrapNAS" in config:
        seen[config["bootstrapNAS"]["training"]["algorithm"]] = f"{TRAINING_PATH}.algorithm"
    for i, entry in enumerate(config.get("compression", [])):
        name, here = entry["algorithm"], f"compression[{i}].algorithm"
        if name in seen:
            raise ConfigError(here, f"algorithm {name!r} is already used at {seen[name]}; each algorithm once", name)
        seen[name] = here
        _check_scopes(entry, f"compression[{i}]")


def check_config(config: Mapping[str, Any], schedule_defaulted: bool = False) -> None:
    if "bootstrapNAS" in config:
        check_training(config["bootstrapNAS"]["training"], schedule_defaulted)
        check_search(config["bootstrapNAS"]["search"])
    check_algorithm_names(config)
