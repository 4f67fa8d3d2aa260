"""A differentiable accuracy predictor (small torch MLP on one-hot choices) for training the generator.

Fitted on measured ``(config, accuracy)`` rows, it lets the accuracy term reach the generator through straight-through
Gumbel-softmax one-hots with exact gradients, which is cheaper and far less noisy than evaluating sampled subnets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .cost import onehot


class AccuracyPredictor(nn.Module):
    """``one-hot (B, sum C_v) -> standardised accuracy (B,)``; ``predict`` returns accuracy in the rows' units."""

    def __init__(self, input_dim: int, hidden_dim: int = 64, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1))
        self.mean, self.std = float(mean), float(std)
        self.stats: dict[str, Any] = {}

    def forward(self, onehots: torch.Tensor) -> torch.Tensor:
        return self.net(onehots).squeeze(-1)

    @torch.no_grad()
    def predict(self, space: Any, configs: Sequence[Mapping[str, Mapping[str, int]]]) -> np.ndarray:
        x = torch.as_tensor(onehot(space, np.array([space.encode(c) for c in configs])), dtype=torch.float32)
        return self(x).numpy() * self.std + self.mean

    @classmethod
    def fit(
        cls,
        space: Any,
        configs: Sequence[Mapping[str, Mapping[str, int]]],
        values: Sequence[float],
        hidden_dim: int = 64,
        epochs: int = 400,
        lr: float = 1e-2,
        weight_decay: float = 1e-3,
        seed: int = 0,
    ) -> AccuracyPredictor:
        """Full-batch Adam on standardised targets; ``stats`` holds the training RMSE and Kendall tau."""
        if len(configs) != len(values) or len(configs) < 3:
            raise ValueError(
                f"accuracy predictor: need >= 3 rows and one value per config, got {len(configs)}/{len(values)}"
            )
        y = np.asarray(values, dtype=float)
        mean, std = float(y.mean()), float(y.std()) or 1.0
        x = torch.as_tensor(onehot(space, np.array([space.encode(c) for c in configs])), dtype=torch.float32)
        t = torch.as_tensor((y - mean) / std, dtype=torch.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(x.shape[1], hidden_dim, mean, std)
            opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
            for _ in range(epochs):
                loss = torch.mean((model(x) - t) ** 2)
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        pred = model.predict(space, configs)
        from nncf_bootstrapnas.evaluation.ranking import kendall_tau

        model.stats = {
            "rows": len(y),
            "train_rmse": float(np.sqrt(np.mean((pred - y) ** 2))),
            "train_kendall_tau": kendall_tau(pred, y),
        }
        return model


def rows_to_xy(rows: Any, metric: str = "accuracy") -> tuple[list[dict], list[float]]:
    """``(configs, values)`` from ``(configs, values)``, ``[(config, value), ...]``, search rows or a SearchResult."""
    if hasattr(rows, "rows"):
        rows = rows.rows
    if isinstance(rows, tuple) and len(rows) == 2 and not isinstance(rows[0], Mapping):
        configs, values = rows
        return list(configs), [float(v) for v in values]
    configs, values = [], []
    for row in rows if isinstance(rows, Iterable) else []:
        if isinstance(row, Mapping) and "config" in row:
            vals = row.get("values", row)
            if metric not in vals:
                raise ValueError(f"generator predictor rows: a row has no '{metric}' value (has {sorted(vals)})")
            configs.append(row["config"])
            values.append(float(vals[metric]))
        elif isinstance(row, (tuple, list)) and len(row) == 2:
            configs.append(row[0])
            values.append(float(row[1]))
        else:
            raise TypeError(f"generator predictor rows: cannot read a row of type {type(row).__name__}")
    return configs, values


__all__ = ["AccuracyPredictor", "rows_to_xy"]
