"""Training the SGNAS-style generator (Huang & Chu 2021, "Searching by Generating") and generating with it.

Loss per sampled constraint ``t`` (normalised to [0, 1] between the minimum and maximum subnet's cost)::

    L = accuracy_term + constraint_weight * penalty(cost(a), t)

``a`` is a straight-through Gumbel-softmax sample of the generator's per-variable logits (hard one-hot forward, soft
gradient backward). ``cost`` is the fitted multilinear cost model (``cost.CostModel``), differentiable in the one-hots.
``penalty`` is SGNAS's hardware-constraint loss made continuous: zero inside the band ``[t - tolerance, t]`` (the
budget is met and mostly used), squared distance in units of ``tolerance`` outside, times ``over_penalty`` above
the budget, plus a weak pull (``centre_pull``) towards the band's centre so that argmax flips do not push the output
out of it. The same penalty is applied to the argmax path (what ``generate`` returns), so the deterministic output is
trained directly. The accuracy term is chosen by what is given:

- ``predictor`` (an ``AccuracyPredictor`` or measured rows) or ``evaluator``/``val_loader`` (rows are measured on
  MACs-stratified subnets and a predictor is fitted): ``-predictor(a)``, exact gradients through the one-hots.
- only ``train_loader``: REINFORCE through the supernet, ``(loss(a) - baseline) * log p(a)`` with the cross-entropy of
  the sampled subnet on a training batch (weight sharing has no gradient w.r.t. the discrete choice, so the
  score-function estimator is the unbiased choice; the moving-average baseline reduces its variance).
- nothing: the cost term alone (the generator only learns to meet constraints).
"""

from __future__ import annotations

import builtins  # the parameter ``range`` of train_generator shadows the builtin
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nncf_bootstrapnas.config.constraints import parse_budget
from nncf_bootstrapnas.config.search_sections import GeneratorSection
from nncf_bootstrapnas.config.sections import section_of
from nncf_bootstrapnas.searchable import require
from nncf_bootstrapnas.utils.progress import progress_bar

from .cost import CONSTRAINTS, CostModel
from .model import ArchitectureGenerator, GeneratorError, gumbel_hard, log_prob
from .predictor import AccuracyPredictor, rows_to_xy

logger = logging.getLogger("nncf_bootstrapnas")


def generator_options(options: Any = None, **overrides: Any) -> GeneratorSection:
    """The ``generator`` section of ``options`` (the section, a Config, a full or bare dict, None) with overrides."""
    section = section_of(options, GeneratorSection, key="generator")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return section.replace(**changes) if changes else section


def _accuracy_source(
    supernet: Any,
    space: Any,
    evaluator: Any,
    predictor: Any,
    train_loader: Any,
    val_loader: Any,
    num_rows: int,
    bn_samples: int,
    seed: int,
) -> tuple[str, AccuracyPredictor | None]:
    if predictor is not None:
        if isinstance(predictor, AccuracyPredictor):
            return "predictor", predictor
        return "predictor", AccuracyPredictor.fit(space, *rows_to_xy(predictor), seed=seed)
    if evaluator is not None or val_loader is not None:
        if evaluator is None:
            from nncf_bootstrapnas.evaluation.selection import BNRecalibratedAccuracy

            evaluator = BNRecalibratedAccuracy(val_loader, bn_loader=train_loader, num_bn_samples=bn_samples)
        score: Callable[[dict], float] = (
            (lambda c: evaluator.score(supernet, c)) if hasattr(evaluator, "score") else evaluator
        )
        from nncf_bootstrapnas.evaluation.quality import stratified_subnets

        configs = stratified_subnets(supernet, space, max(num_rows, 3), seed)
        values = [float(score(c)) for c in configs]
        return "predictor", AccuracyPredictor.fit(space, configs, values, seed=seed)
    if train_loader is not None:
        return "reinforce", None
    return "cost", None


def _needs(constraint: str, own_space: bool, fit_cost: bool, measured: bool) -> dict[str, tuple[str, ...]]:
    """Supernet members training calls (searchable protocol): the exact cost to fit the cost model; activation and
    forward only when the accuracy term is measured on the supernet (BN-recalibrated rows or REINFORCE)."""
    needs = {"train_generator()": ("search_space",) if own_space else ()}
    if fit_cost and constraint in CONSTRAINTS:
        needs[f"generator.constraint '{constraint}'"] = (constraint,)
    if measured:
        needs["the measured accuracy term"] = ("activate", "active_config", "forward", "macs")
    return needs


def _measures_supernet(predictor: Any, evaluator: Any, train_loader: Any, val_loader: Any) -> bool:
    if predictor is not None:
        return False
    return hasattr(evaluator, "score") or (evaluator is None and (val_loader is not None or train_loader is not None))


def _penalty(cost: torch.Tensor, t: torch.Tensor, tol: float, over: float, pull: float = 0.0) -> torch.Tensor:
    above = torch.relu(cost - t) / tol
    below = torch.relu(t - tol - cost) / tol
    centre = (cost - (t - 0.5 * tol)) / tol
    return over * above**2 + below**2 + pull * centre**2


def train_generator(
    supernet: Any,
    options: Any = None,
    *,
    space: Any = None,
    predictor: Any = None,
    evaluator: Any = None,
    train_loader: Iterable[Any] | None = None,
    val_loader: Iterable[Any] | None = None,
    range: tuple[float, float] | None = None,  # noqa: A002 - the public name asked for by the CLI
    seed: int = 0,
    cost_model: CostModel | None = None,
    progress: bool = False,
    config: Any = None,
    **overrides: Any,
) -> ArchitectureGenerator:
    """Train a generator mapping a constraint value in ``range`` (absolute units, default: the whole space) to a
    subnet.

    ``options``: a ``GeneratorSection`` (``cfg.sections.generator``), a loaded ``Config`` (``config=`` is the same
    argument's older name), a full or bare dict, or None (schema defaults); ``overrides`` change single keys
    (``epochs=4``, ``lr=5e-3``, ``constraint="macs"``). The accuracy term comes from ``predictor`` (an
    ``AccuracyPredictor``, measured rows or a ``SearchResult``), else from rows measured with ``evaluator`` (a
    selection mechanism ``.score(supernet, config)`` or ``fn(config) -> float``) or on ``val_loader``, else from
    REINFORCE on ``train_loader``. The supernet's weights are never changed; its active subnet and BN statistics are
    restored.
    """
    g = generator_options(options if options is not None else config, **overrides)
    measured = _measures_supernet(predictor, evaluator, train_loader, val_loader)
    require(supernet, "train_generator()", _needs(g.constraint, space is None, cost_model is None, measured), space)
    space = space if space is not None else supernet.search_space
    start = time.perf_counter()
    cm = cost_model if cost_model is not None else CostModel.fit(supernet, space, g.constraint, seed=seed)
    times = {"cost_model_s": time.perf_counter() - start}
    if cm.constraint != g.constraint:
        raise GeneratorError(f"generator: cost model is for '{cm.constraint}', constraint is '{g.constraint}'")
    lo, hi = (cm.lo, cm.hi) if range is None else (float(range[0]), float(range[1]))
    if not cm.lo <= lo < hi:
        raise GeneratorError(
            f"generator range=({lo:g}, {hi:g}): need minimum subnet {g.constraint} ({cm.lo:g}) <= lo < hi; "
            f"the space spans {cm.lo:g} .. {cm.hi:g}"
        )
    hi = min(hi, cm.hi)
    mode, acc_pred = _accuracy_source(
        supernet, space, evaluator, predictor, train_loader, val_loader, g.num_rows, g.bn_samples, seed
    )
    times["accuracy_rows_s"] = time.perf_counter() - start - times["cost_model_s"]
    t_lo, t_hi = float(cm.normalise(lo)), float(cm.normalise(hi))
    rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = ArchitectureGenerator(space, g.constraint, cm.lo, cm.hi, g.hidden_dim, g.noise_dim)
    opt = torch.optim.Adam(gen.parameters(), lr=g.lr)
    batch_iter = itertools.cycle(train_loader) if mode == "reinforce" else None  # type: ignore[arg-type]
    baseline: list[float] = []
    n_t, noise_dim, tolerance = g.num_constraint_values, g.noise_dim, g.tolerance
    history: list[float] = []
    threads = torch.get_num_threads()
    if mode != "reinforce":  # a tiny MLP: extra threads only add synchronisation (measured 10x slower under load)
        torch.set_num_threads(1)
    try:
        with progress_bar("generator", g.epochs * g.steps_per_epoch, progress) as bar:
            for epoch in builtins.range(g.epochs):
                temp = g.tau * g.tau_decay**epoch
                for _ in builtins.range(g.steps_per_epoch):
                    u = torch.rand(n_t, generator=rng)
                    t = t_lo + (torch.arange(n_t) + u) / n_t * (t_hi - t_lo)
                    noise = torch.randn(n_t, noise_dim, generator=rng) if noise_dim else None
                    logits = gen.logits(t, noise)
                    hard = gumbel_hard(logits, temp, rng)
                    argmax = [_straight_through_argmax(lg, temp) for lg in logits]
                    pen = _penalty(cm.torch_cost(hard), t, tolerance, g.over_penalty, g.centre_pull)
                    pen = pen + _penalty(cm.torch_cost(argmax), t, tolerance, g.over_penalty, g.centre_pull)
                    loss = g.constraint_weight * pen.mean()
                    if mode == "predictor":
                        loss = loss - acc_pred(torch.cat(hard, dim=1)).mean()  # type: ignore[misc]
                    elif mode == "reinforce":
                        task = _subnet_losses(supernet, space, hard, next(batch_iter))  # type: ignore[arg-type]
                        b = float(np.mean(baseline[-20:])) if baseline else float(task.mean())  # earlier steps only
                        baseline.append(float(task.mean()))
                        adv = (task - b) / (float(task.std()) + 1e-6 if len(task) > 1 else 1.0)
                        loss = loss + (adv * log_prob(logits, hard)).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    history.append(float(loss.detach()))
                    bar.advance(info=f"epoch {epoch + 1}, loss {history[-1]:.3f}")
    finally:
        torch.set_num_threads(threads)
    gen.eval()
    gen.meta.update(
        {
            "mode": mode,
            "train_range": [lo, hi],
            "tolerance": tolerance,
            "settings": {**g.to_json(), "seed": seed},
            "cost_model_error": cm.error,
            "predictor_stats": acc_pred.stats if acc_pred is not None else None,
            "final_loss": float(np.mean(history[-g.steps_per_epoch :])),
            "train_time_s": round(time.perf_counter() - start, 3),
            "time_breakdown_s": {
                **{k: round(v, 3) for k, v in times.items()},
                "training_loop_s": round(time.perf_counter() - start - sum(times.values()), 3),
            },
        }
    )
    return gen


def _straight_through_argmax(logits: torch.Tensor, tau: float) -> torch.Tensor:
    soft = torch.softmax(logits / tau, dim=1)
    hard = torch.zeros_like(soft).scatter_(1, logits.argmax(dim=1, keepdim=True), 1.0)
    return hard - soft.detach() + soft


@torch.no_grad()
def _subnet_losses(supernet: Any, space: Any, hard: Sequence[torch.Tensor], batch: Any) -> torch.Tensor:
    """Cross-entropy of each sampled subnet on one batch, BN with batch statistics; supernet state restored."""
    from nncf_bootstrapnas.evaluation.measure import (
        device_of,
        logits_of,
        preserved_batchnorm,
        preserved_config,
        split_batch,
    )

    x, y = split_batch(batch)
    if y is None:
        raise GeneratorError("generator (supernet mode): train_loader must yield labelled batches (inputs, targets)")
    device = device_of(supernet)
    x, y = x.to(device), y.to(device)
    enc = torch.stack([h.argmax(dim=1) for h in hard], dim=1).numpy()
    out = []
    with preserved_config(supernet), preserved_batchnorm(supernet):
        supernet.eval()
        for m in supernet.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.train()
        for row in enc:
            supernet.activate(space.decode(row))
            out.append(float(F.cross_entropy(logits_of(supernet(x)), y, ignore_index=-100)))
    return torch.tensor(out)


def generate(
    supernet: Any, generator: ArchitectureGenerator, constraint_value: float | str, strict: bool = False
) -> dict[str, dict[str, int]]:
    """The subnet config for ``constraint_value`` (``40e6`` or ``"macs=40e6"``), validated against the supernet.

    One forward pass and an argmax: deterministic. The CLI's ``generate --constraint macs=40e6`` calls this.
    ``strict=True`` guarantees the budget: while the exact cost (``supernet.macs``/``params``) is above it, the
    variable whose next smaller choice the generator itself likes best (highest logit) steps down one choice.
    """
    require(
        supernet,
        "generate()",
        {"generate()": ("search_space",), "strict=True": (generator.constraint,) if strict else ()},
    )
    value = parse_budget(constraint_value, generator.constraint)
    cfg = supernet.search_space.validate(generator(value))
    if not strict:
        return cfg
    space, cost = generator.space, getattr(supernet, generator.constraint)
    enc = space.encode(cfg)
    with torch.no_grad():
        logits = [lg[0] for lg in generator.logits(torch.tensor([min(generator.normalise(value), 1.0)]))]
    while cost(space.decode(enc)) > value:
        movable = [j for j in builtins.range(len(enc)) if enc[j] < len(logits[j]) - 1]
        if not movable:
            break  # the minimum subnet: value >= cost_lo was checked, so only reached through cost rounding
        j = max(movable, key=lambda k: (float(logits[k][enc[k] + 1]), -k))
        enc[j] += 1
    return supernet.search_space.validate(space.decode(enc))


def evaluate_generator(
    supernet: Any,
    generator: ArchitectureGenerator,
    values: Sequence[float],
    tolerance: float | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Generate for each value and measure the true cost: fraction under budget and within the band
    ``[value - tolerance * range, value]``, mean distance and milliseconds per generation."""
    tol = float(tolerance if tolerance is not None else generator.meta.get("tolerance", 0.05))
    cost_fn = getattr(supernet, generator.constraint)
    rows = []
    for v in values:
        t0 = time.perf_counter()
        cfg = generate(supernet, generator, float(v), strict=strict)
        ms = (time.perf_counter() - t0) * 1e3
        rows.append({"target": float(v), "cost": float(cost_fn(cfg)), "ms": ms, "config": cfg})
    return _satisfaction(rows, generator.cost_lo, generator.cost_hi, tol)


def random_baseline(
    supernet: Any, space: Any, values: Sequence[float], constraint: str, tolerance: float, seed: int = 0
) -> dict[str, Any]:
    """The same statistics for one uniformly random config per value (what the generator must beat)."""
    rng = np.random.default_rng(seed)
    cost_fn = getattr(supernet, constraint)
    lo, hi = float(cost_fn(space.minimum())), float(cost_fn(space.maximum()))
    rows = [{"target": float(v), "cost": float(cost_fn(space.sample(rng)))} for v in values]
    return _satisfaction(rows, lo, hi, tolerance)


def _satisfaction(rows: list[dict[str, Any]], lo: float, hi: float, tol: float) -> dict[str, Any]:
    band = tol * (hi - lo)
    under = [r["cost"] <= r["target"] for r in rows]
    within = [r["target"] - band <= r["cost"] <= r["target"] for r in rows]
    dist = [abs(r["cost"] - r["target"]) / (hi - lo) for r in rows]
    out = {
        "fraction_under_budget": float(np.mean(under)),
        "fraction_within_band": float(np.mean(within)),
        "mean_abs_error_of_range": float(np.mean(dist)),
        "rows": rows,
    }
    if rows and "ms" in rows[0]:
        out["ms_per_generation"] = float(np.median([r["ms"] for r in rows]))
    return out


__all__ = ["evaluate_generator", "generate", "generator_options", "random_baseline", "train_generator"]
