"""Legacy BootstrapNAS search API: ``BaseSearchAlgorithm.from_config(...).run(...)`` on top of :func:`search`.

Legacy scripts pass the NNCF elasticity controller; it is returned untouched (subnets are activated through
``supernet.activate``). ``metrics`` is ``[accuracy, MMACs]`` of the selected subnet (MMACs = MACs / 1e6), followed by
any other objective, as legacy scripts print them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.subnet_search.objectives import Objective
from nncf_bootstrapnas.subnet_search.result import SearchResult
from nncf_bootstrapnas.subnet_search.settings import search_options
from nncf_bootstrapnas.utils.io import write_csv


class LegacyEfficiencyObjective(Objective):
    """Wraps a legacy ``efficiency_evaluator`` (``evaluate_subnet()``, ``evaluate_model(model)`` or a callable)."""

    direction = "min"

    def __init__(self, evaluator: Any) -> None:
        super().__init__(str(getattr(evaluator, "name", None) or "efficiency"))
        self.evaluator = evaluator

    def __call__(self, ctx: Any) -> float:
        model = ctx.active_supernet()
        if hasattr(self.evaluator, "evaluate_subnet"):
            return float(self.evaluator.evaluate_subnet())
        if hasattr(self.evaluator, "evaluate_model"):
            return float(self.evaluator.evaluate_model(model))
        if callable(self.evaluator):
            return float(self.evaluator(model))
        raise TypeError(
            f"efficiency_evaluator {self.evaluator!r} has no evaluate_subnet/evaluate_model and is not callable"
        )


class BaseSearchAlgorithm:
    """NNCF-compatible search object; ``result`` holds the full :class:`SearchResult` after ``run``."""

    def __init__(self, supernet: Any, controller: Any, config: Mapping[str, Any] | None) -> None:
        self.supernet = supernet
        self.controller = controller
        self.config = config if config is not None else {}
        self.search_params = search_options(config)  # validated now: a bad name fails before any measurement
        self.log_dir = Path(_get(self.config, "log_dir", "."))
        self.result: SearchResult | None = None
        self.best_config: dict | None = None
        self.best_vals: list[float] | None = None

    @classmethod
    def from_config(cls, supernet: Any, controller: Any, config: Mapping[str, Any]) -> BaseSearchAlgorithm:
        """Legacy constructor; the algorithm is ``bootstrapNAS.search.algorithm`` (checked against the registry)."""
        return cls(supernet, controller, config)

    @property
    def acc_delta(self) -> float:
        return self.search_params.acc_delta

    @acc_delta.setter
    def acc_delta(self, value: float) -> None:
        self.search_params = self.search_params.replace(acc_delta=float(value))

    def run(
        self,
        validate_fn: Callable[[Any, Any], float],
        val_loader: Any,
        checkpoint_save_dir: str | Path,
        efficiency_evaluator: Any = None,
        ref_acc: float | None = None,
        tensorboard_writer: Any = None,
        bn_loader: Any = None,
        resume: bool = False,
        **search_kwargs: Any,
    ) -> tuple[Any, dict, list[float]]:
        """``search()``, then activate the chosen subnet (``SearchResult.select``, BN-adapted like legacy) and return
        ``(controller, config, metrics)``."""
        from nncf_bootstrapnas.subnet_search.api import search

        overrides: dict[str, Any] = {}
        if efficiency_evaluator is not None:
            kept = [o for o in self.search_params.objectives if o not in ("macs",)]
            overrides["objectives"] = [*kept, LegacyEfficiencyObjective(efficiency_evaluator)]
        if ref_acc is not None and ref_acc >= 0 and ref_acc != 100:  # 100 was the legacy "not given" value
            overrides["ref_acc"] = ref_acc
        self.result = search(
            self.supernet,
            self.search_params,
            validate_fn,
            val_loader,
            bn_loader,
            checkpoint_dir=checkpoint_save_dir,
            resume=resume,
            **overrides,
            **search_kwargs,
        )
        choice = self.result.select()
        best = choice.row if choice is not None else self.result.maximum
        self.best_config = best["config"]
        self.best_vals = self._metrics(best)
        self.supernet.activate(self.best_config)
        self._adapt_bn(bn_loader if bn_loader is not None else val_loader)
        if tensorboard_writer is not None:
            for row in self.result.rows:
                for name, value in row["values"].items():
                    tensorboard_writer.add_scalar(f"search/{name}", value, row["index"])
        return self.controller, self.best_config, self.best_vals

    def _metrics(self, row: dict[str, Any]) -> list[float]:
        values = dict(row["values"])
        out = []
        if "accuracy" in values:
            out.append(values.pop("accuracy"))
        if "macs" in values:
            out.append(values.pop("macs") / 1e6)
        return out + list(values.values())

    def _adapt_bn(self, loader: Any) -> None:
        """Legacy: the activated subnet keeps BN statistics re-estimated for it."""
        n = self.search_params.num_bn_adaptation_samples
        if n > 0 and loader is not None:
            from nncf_bootstrapnas.evaluation.measure import adapt_bn, batchnorms

            if batchnorms(self.supernet):
                adapt_bn(self.supernet, loader, n)

    # ---- legacy outputs ---------------------------------------------------------------------------------------------
    @property
    def search_records(self) -> list[list[Any]]:
        """Legacy rows: ``[config, name1, value1, name2, value2, ...]`` per evaluation."""
        if self.result is None:
            return []
        return [[r["config"], *[v for kv in r["values"].items() for v in kv]] for r in self.result.rows]

    def _path(self, filename: str | Path, suffix: str) -> Path:
        path = Path(filename)
        if not path.is_absolute() and path.parent == Path("."):
            path = self.log_dir / path  # legacy: bare file names go to log_dir
        return path if path.suffix else path.with_suffix(suffix)

    def search_progression_to_csv(self, filename: str | Path = "search_progression.csv") -> Path:
        return write_csv(self._path(filename, ".csv"), self.search_records)

    def visualize_search_progression(self, filename: str | Path = "search_progression") -> Path:
        if self.result is None:
            raise RuntimeError("visualize_search_progression() needs a finished run(); call run() first")
        return self.result.plot_progression(self._path(filename, ".png"))


def _get(config: Any, key: str, default: Any) -> Any:
    try:
        return config.get(key, default)
    except AttributeError:
        return default
