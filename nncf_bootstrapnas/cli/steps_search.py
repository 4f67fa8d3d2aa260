"""Search step: run the configured search, save its files, pick the subnet to deploy with the legacy rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nncf_bootstrapnas.cli import stages
from nncf_bootstrapnas.cli.session import Session, seed_everything
from nncf_bootstrapnas.cli.steps_model import torch_accuracy

if TYPE_CHECKING:
    from nncf_bootstrapnas.pipeline.data import StageData


def search_overrides(session: Session, ref_acc: float | None) -> dict[str, Any]:
    """CLI flags and the measured original accuracy as ``ref_acc`` (unless the config sets one)."""
    over: dict[str, Any] = {"num_evals": getattr(session.args, "num_evals", None)}
    if session.config.sections.search.ref_acc is None and ref_acc is not None:
        over["ref_acc"] = ref_acc
    return over


def run(session: Session, supernet: Any, data: StageData, ref_acc: float | None) -> tuple[Any, Any]:
    """Search, write search/ (CSV, JSON, Markdown, plots) and return the result and the chosen subnet."""
    seed_everything(session.seed)
    result = choice = None
    with session.stage("search", "Search sub-networks") as rec:
        out = session.out / "search"
        result = stages.run_search(
            supernet, session.config, torch_accuracy, data, out, session.args.resume, session.progress,
            search_overrides(session, ref_acc),
        )  # fmt: skip
        files = result.save(out)
        for name, path in files.items():
            if name in ("pareto", "progression"):
                session.report.plots[f"search {name}"] = session.rel(path)
            else:
                session.report.artifacts[f"search result ({name})"] = session.rel(path)
        choice = choose(result)
        rec.details = {"evaluations": len(result.rows), "front": len(result.front_indices)}
        session.report.search = summary(result, choice)
        if choice is not None:
            vals = ", ".join(f"{k} {v:.4g}" for k, v in choice.values.items())
            session.console.print(f"chosen subnet (#{choice.index}, {choice.rule}): {vals}")
    return result, choice


def choose(result: Any) -> Any:
    """The search result's one choice (``SearchResult.select``): the legacy rule (fewest MACs within acc_delta of
    ref_acc) or, if none qualifies, the most accurate measured subnet, marked ``qualified=False``."""
    return result.select()


def summary(result: Any, choice: Any) -> dict[str, Any]:
    return {
        "algorithm": result.algorithm,
        "evaluations": len(result.rows),
        "pareto_front_size": len(result.front_indices),
        "hypervolume": result.hypervolume,
        "ref_acc": result.ref_acc,
        "ref_acc_source": result.ref_acc_source,
        "acc_delta": result.acc_delta,
        "stopped_by": result.stopped_by,
        "chosen_index": None if choice is None else choice.index,
        "chosen_rule": None if choice is None else choice.rule,
        "chosen_values": None if choice is None else choice.values,
        "chosen_config": None if choice is None else choice.config,
    }
