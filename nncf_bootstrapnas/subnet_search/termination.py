"""When a search stops, as separate objects (pymoo style): each returns a reason string or ``None``."""

from __future__ import annotations

from typing import Any


class Termination:
    def reason(self, driver: Any) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError


class EvaluationBudget(Termination):
    """``num_evals`` real (not cached) evaluations."""

    def __init__(self, num_evals: int) -> None:
        self.num_evals = int(num_evals)

    def reason(self, driver: Any) -> str | None:
        return f"budget of {self.num_evals} evaluations" if driver.evaluator.n_measured >= self.num_evals else None


class SpaceExhausted(Termination):
    """Every subnet of the space has been measured."""

    def reason(self, driver: Any) -> str | None:
        return "search space exhausted" if driver.evaluator.n_measured >= driver.space.size else None


class AlgorithmFinished(Termination):
    """The algorithm has nothing left to propose (e.g. NSGA-II only revisits measured subnets)."""

    def reason(self, driver: Any) -> str | None:
        return f"{driver.algorithm.name} finished" if driver.algorithm.done else None


def default_terminations(num_evals: int) -> list[Termination]:
    return [EvaluationBudget(num_evals), SpaceExhausted(), AlgorithmFinished()]
