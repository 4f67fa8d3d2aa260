"""Torch-free test doubles for the search tests: an analytic FakeSupernet with a real accuracy/MACs trade-off.

It follows the SuperNetwork contract of docs/design.md (``search_space``, ``activate``, ``macs``, ``params``,
``extract``, ``get_state``, ``example_input``). Module-level and torch-free on purpose: worker processes,
torch.distributed ranks and killed-search subprocesses unpickle/import it quickly.
"""

from __future__ import annotations

import math

import numpy as np

from nncf_bootstrapnas.elasticity.search_space import SearchSpace, Variable


class FakeSupernet:
    """Accuracy and MACs are deterministic functions of the config, with a non-trivial trade-off between them."""

    def __init__(self, n_width: int = 4, n_kernel: int = 2, n_depth: int = 2, seed: int = 0) -> None:
        variables = [Variable("width", f"layer{i}", (64, 48, 32, 16)) for i in range(n_width)]
        variables += [Variable("kernel", f"conv{i}", (7, 5, 3)) for i in range(n_kernel)]
        variables += [Variable("depth", f"stage{i}", (0, 1, 2)) for i in range(n_depth)]
        self.search_space = SearchSpace(variables)
        rng = np.random.default_rng(seed)
        n = len(variables)
        self.cost = rng.uniform(0.5, 2.0, n)  # how much MACs each variable saves when reduced
        self.value = rng.uniform(0.2, 1.5, n)  # how much accuracy it costs
        self.power = rng.uniform(0.6, 2.5, n)
        self.seed = seed
        self.active_config = self.search_space.maximum()
        self.activations = 0
        self.example_input = (np.zeros((1, 3, 8, 8), dtype=np.float32),)

    def _fractions(self, cfg: dict) -> np.ndarray:
        x = self.search_space.encode(cfg)
        return x / np.maximum(self.search_space.upper_bounds, 1)

    def activate(self, cfg: dict | None) -> None:
        self.active_config = self.search_space.validate(cfg)
        self.activations += 1

    def macs(self, cfg: dict | None = None) -> int:
        f = self._fractions(cfg if cfg is not None else self.active_config)
        return int(round(1e6 * (5.0 + float(np.sum(self.cost * (1.0 - f) ** 1.5)) * 10.0)))

    def params(self, cfg: dict | None = None) -> int:
        f = self._fractions(cfg if cfg is not None else self.active_config)
        return int(round(1e4 * (1.0 + float(np.sum(self.cost[::-1] * (1.0 - f))))))

    def accuracy(self, cfg: dict | None = None) -> float:
        f = self._fractions(cfg if cfg is not None else self.active_config)
        loss = float(np.sum(self.value * f**self.power)) + 0.3 * float(f[0] * f[-1])
        return 95.0 - 4.0 * loss + 0.5 * math.sin(3.0 * float(np.sum(f)))

    def extract(self, cfg: dict | None = None) -> dict:
        return {"config": self.search_space.validate(cfg)}

    def get_state(self) -> dict:
        return {"kind": "fake", "seed": self.seed, "space": self.search_space.to_json()}


def fake_validate(model: FakeSupernet, loader: object) -> float:
    """The accuracy of the ACTIVE config: catches a search that forgets to activate before validating."""
    return model.accuracy(model.active_config)


# ---- sanity of the double itself (a search test is only as good as its fake) ------------------------------------------
def test_fake_supernet_has_a_real_trade_off():
    sn = FakeSupernet()
    space = sn.search_space
    top, bottom = space.maximum(), space.minimum()
    assert sn.macs(top) > sn.macs(bottom)
    assert sn.accuracy(top) > sn.accuracy(bottom)
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(200)]
    macs = np.array([sn.macs(c) for c in samples])
    acc = np.array([sn.accuracy(c) for c in samples])
    assert np.corrcoef(macs, acc)[0, 1] > 0.3  # bigger is better, but not perfectly
    assert len({round(a, 6) for a in acc}) > 150
