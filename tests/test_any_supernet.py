"""Search, generator and quality report on a super-network this package did not build (the SearchableSupernet
protocol of docs/any_supernet.md).

``OFANet`` is written the Once-for-All way: its own dynamic layers (weights at the maximum size, the active subnet a
prefix of channels and the centre of the kernel), its own ``set_active_subnet(ks=[...], e=[...], d=[...], w=...)``
config, its own MAC counter and ``get_active_subnet()``. ``OFAAdapter`` (about 30 lines) is all it takes to plug it in.
"""

from __future__ import annotations

import copy
import itertools
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nncf_bootstrapnas.elasticity.search_space import SearchSpace, Variable
from nncf_bootstrapnas.evaluation import quality_report, top1_accuracy
from nncf_bootstrapnas.generator import generate, train_generator
from nncf_bootstrapnas.searchable import SearchableSupernet, SupernetProtocolError
from nncf_bootstrapnas.subnet_search import search
from nncf_bootstrapnas.subnet_search.indicators import non_dominated

KS, EXPAND, DEPTH, HIDDEN = (7, 5, 3), (3, 2, 1), (2, 1), (32, 24, 16)  # OFA order in the adapter: largest first
STAGES = ((6, 6), (6, 12))  # (in, out) channels per stage, two blocks each
HW, CLASSES = 8, 4


# ---- an Once-for-All-style dynamic network (knows nothing of nncf_bootstrapnas) ------------------------------------
class DynamicConv2d(nn.Module):
    """Weight at the maximum size; runs ``active_out`` output channels, the input's channels, the centre kernel."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) * (2.0 / (cin * kernel * kernel)) ** 0.5)
        self.active_out, self.active_kernel, self.last_macs = cout, kernel, 0

    def active_weight(self, cin: int) -> torch.Tensor:
        k, start = self.active_kernel, (self.weight.shape[-1] - self.active_kernel) // 2
        return self.weight[: self.active_out, :cin, start : start + k, start : start + k]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.active_weight(x.shape[1])
        self.last_macs = w.numel() * x.shape[2] * x.shape[3]
        return F.conv2d(x, w, padding=self.active_kernel // 2)

    def shrink(self, cin: int) -> None:
        self.weight = nn.Parameter(self.active_weight(cin).detach().clone())


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """OFA's DynamicBatchNorm2d: statistics and affine parameters of the first ``C`` channels of its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        factor = 0.0
        if self.training:
            self.num_batches_tracked += 1
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        mean, var = self.running_mean[:c], self.running_var[:c]
        return F.batch_norm(x, mean, var, self.weight[:c], self.bias[:c], self.training, factor, self.eps)

    def shrink(self, c: int) -> None:
        self.weight, self.bias = (nn.Parameter(t[:c].detach().clone()) for t in (self.weight, self.bias))
        self.running_mean, self.running_var = self.running_mean[:c].clone(), self.running_var[:c].clone()
        self.num_features = c


class DynamicLinear(nn.Linear):
    def __init__(self, fin: int, fout: int) -> None:
        super().__init__(fin, fout)
        self.active_out, self.last_macs = fout, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight[: self.active_out, : x.shape[1]]
        self.last_macs = w.numel()
        return F.linear(x, w, self.bias[: self.active_out])

    def shrink(self, fin: int) -> None:
        self.weight = nn.Parameter(self.weight[: self.active_out, :fin].detach().clone())
        self.bias = nn.Parameter(self.bias[: self.active_out].detach().clone())


class Block(nn.Module):
    """k x k conv to ``cout * e`` channels, 1 x 1 conv back to ``cout``; residual when shapes match."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout * max(EXPAND)
        self.conv1, self.bn1 = DynamicConv2d(cin, mid, max(KS)), DynamicBatchNorm2d(mid)
        self.conv2, self.bn2 = DynamicConv2d(mid, cout, 1), DynamicBatchNorm2d(cout)
        self.cout, self.residual = cout, cin == cout

    def set_active(self, ks: int, e: int) -> None:
        self.conv1.active_kernel, self.conv1.active_out = ks, self.cout * e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + x if self.residual else y)


class OFANet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.stem_bn = DynamicConv2d(3, STAGES[0][0], 3), DynamicBatchNorm2d(STAGES[0][0])
        self.stages = nn.ModuleList(nn.ModuleList([Block(i, o), Block(o, o)]) for i, o in STAGES)
        self.mix, self.head = DynamicLinear(STAGES[-1][1], max(HIDDEN)), DynamicLinear(max(HIDDEN), CLASSES)
        self.depths = [len(s) for s in self.stages]

    def set_active_subnet(self, ks: list[int], e: list[int], d: list[int], w: int) -> None:
        for block, k, ratio in zip(itertools.chain(*self.stages), ks, e):
            block.set_active(k, ratio)
        self.depths, self.mix.active_out = list(d), w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        for s, (stage, depth) in enumerate(zip(self.stages, self.depths)):
            x = F.avg_pool2d(x, 2) if s else x  # later stages run at half resolution
            for block in stage[:depth]:
                x = block(x)
        return self.head(F.relu(self.mix(x.mean((2, 3)))))

    def compute_macs(self) -> int:
        """Analytic MACs of the active subnet for one ``HW x HW`` sample."""
        total = 3 * 9 * STAGES[0][0] * HW * HW
        for s, (stage, depth, (cin, cout)) in enumerate(zip(self.stages, self.depths, STAGES)):
            for j, block in enumerate(stage[:depth]):
                mid, k = block.conv1.active_out, block.conv1.active_kernel
                total += ((cin if j == 0 else cout) * k * k * mid + mid * cout) * (HW >> s) ** 2
        return total + STAGES[-1][1] * self.mix.active_out + self.mix.active_out * CLASSES

    def get_active_subnet(self) -> OFANet:
        """A physically smaller copy: inactive blocks dropped, every layer cut to its active size."""
        net = copy.deepcopy(self)
        net.stages = nn.ModuleList(nn.ModuleList(s[:d]) for s, d in zip(net.stages, net.depths))
        for (cin, cout), stage in zip(STAGES, net.stages):
            for j, b in enumerate(stage):
                b.conv1.shrink(cin if j == 0 else cout)
                b.bn1.shrink(b.conv1.active_out)
                b.conv2.shrink(b.conv1.active_out)
        net.mix.shrink(STAGES[-1][1])
        net.head.shrink(net.mix.active_out)
        return net


# ---- the adapter: the whole integration ------------------------------------------------------------------------------
class OFAAdapter(nn.Module):
    """SearchableSupernet over OFANet: integer-coded choices in, ``set_active_subnet(**ofa_config)`` out."""

    def __init__(self, net: OFANet) -> None:
        super().__init__()
        self.net, n_blocks = net, sum(len(s) for s in net.stages)
        variables = [Variable("ks", str(i), KS) for i in range(n_blocks)]
        variables += [Variable("e", str(i), EXPAND) for i in range(n_blocks)]
        variables += [Variable("d", str(i), DEPTH) for i in range(len(net.stages))]
        self.search_space = SearchSpace([*variables, Variable("w", "mix", HIDDEN)])
        self.activate(None)

    def ofa_config(self, cfg: dict) -> dict:
        """A complete config (validated, or a search result's) in OFANet's own format, blocks in order."""
        ordered = {dim: [cfg[dim][str(i)] for i in range(len(cfg[dim]))] for dim in ("ks", "e", "d")}
        return {**ordered, "w": cfg["w"]["mix"]}

    def activate(self, config: dict | None) -> None:
        self.active_config = self.search_space.validate(config)  # fills the maximum, rejects foreign keys/values
        self.net.set_active_subnet(**self.ofa_config(self.active_config))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _with(self, config: dict | None, fn: Callable[[], Any]) -> Any:
        """``fn()`` with ``config`` (default: the active one) active; the active subnet is restored."""
        previous = self.active_config
        self.activate(previous if config is None else config)
        try:
            return fn()
        finally:
            self.activate(previous)

    def macs(self, config: dict | None = None) -> int:
        return self._with(config, self.net.compute_macs)

    def extract(self, config: dict | None = None) -> nn.Module:
        return self._with(config, self.net.get_active_subnet)

    def params(self, config: dict | None = None) -> int:
        return sum(p.numel() for p in self.extract(config).parameters())


# ---- data and a briefly trained supernet -----------------------------------------------------------------------------
def _data(n: int, seed: int) -> TensorDataset:
    """Noisy class templates: separable, but not trivially so for every subnet."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.randn(CLASSES, 3, HW, HW, generator=torch.Generator().manual_seed(99))
    y = torch.randint(0, CLASSES, (n,), generator=g)
    return TensorDataset(templates[y] + 2.0 * torch.randn(n, 3, HW, HW, generator=g), y)


@pytest.fixture(scope="module")
def loaders() -> tuple[DataLoader, DataLoader, DataLoader]:
    """Shuffled training data, validation data and the same training data in a fixed order for BN recalibration."""
    train = _data(256, 0)
    shuffled = DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    return shuffled, DataLoader(_data(256, 1), batch_size=128), DataLoader(train, batch_size=64)


@pytest.fixture(scope="module")
def adapter(loaders) -> OFAAdapter:
    torch.manual_seed(0)
    sn, rng = OFAAdapter(OFANet()), np.random.default_rng(0)
    opt = torch.optim.Adam(sn.parameters(), lr=3e-3)
    space = sn.search_space
    for _, (x, y) in zip(range(20), itertools.cycle(loaders[0])):  # sandwich rule: max, min, one random subnet
        opt.zero_grad()
        for cfg in (space.maximum(), space.minimum(), space.sample(rng)):
            sn.activate(cfg)
            F.cross_entropy(sn(x), y).backward()
        opt.step()
    sn.activate(None)
    return sn.eval()


FAST_LINAS = {"initial_evals": 8, "candidates_per_round": 4, "inner_population": 16, "inner_generations": 5,
              "predictors": ["ridge"]}  # fmt: skip


# ---- tests -----------------------------------------------------------------------------------------------------------
def _counted_macs(adapter: OFAAdapter, x: torch.Tensor) -> int:
    """MACs the dynamic layers really ran for one sample (skipped blocks run nothing)."""
    layers = [m for m in adapter.modules() if hasattr(m, "last_macs")]
    for m in layers:
        m.last_macs = 0
    with torch.no_grad():
        adapter(x[:1])
    return sum(m.last_macs for m in layers)


def test_activation_really_changes_the_network(adapter, loaders) -> None:
    assert isinstance(adapter, SearchableSupernet)
    x, space = loaders[1].dataset.tensors[0][:4], adapter.search_space
    outs, macs = [], []
    for cfg in (space.maximum(), space.minimum(), space.sample(np.random.default_rng(1))):
        adapter.activate(cfg)
        with torch.no_grad():
            outs.append(adapter(x))
        macs.append(adapter.macs())
        assert adapter.macs(cfg) == macs[-1] == _counted_macs(adapter, x)
        extracted = adapter.extract().eval()
        assert sum(p.numel() for p in extracted.parameters()) == adapter.params(cfg)
        torch.testing.assert_close(extracted(x), outs[-1])  # the stand-alone subnet computes the same
    adapter.activate(None)
    assert macs[0] > macs[2] > macs[1] and not torch.allclose(outs[0], outs[1])


def test_linas_search_end_to_end(adapter, loaders) -> None:
    from nncf_bootstrapnas.evaluation import recalibrated_accuracy

    _, val, bn = loaders
    res = search(adapter, None, top1_accuracy, val, bn, algorithm="LINAS", num_evals=16, seed=0, progress=False,
                 linas=FAST_LINAS, batchnorm_adaptation={"num_bn_adaptation_samples": 64})  # fmt: skip
    assert len(res.rows) == 16 and len({tuple(r["x"]) for r in res.rows}) == 16
    assert len(res.algorithm_stats["rounds"]) == 2  # (16 - 8 initial) / 4 per round: the predictor steered
    F_ = np.array([[-r["values"]["accuracy"], r["values"]["macs"]] for r in res.rows])
    assert res.front_indices and sorted(res.front_indices) == sorted(non_dominated(F_).tolist())
    assert all(r["values"]["macs"] == adapter.macs(r["config"]) for r in res.rows)
    assert res.maximum["values"]["macs"] > res.minimum["values"]["macs"]
    assert len({r["values"]["accuracy"] for r in res.rows}) > 3  # subnets really differ
    best = res.rows[res.front_indices[0]]
    again = recalibrated_accuracy(adapter, best["config"], val, bn, 64, top1_accuracy)
    assert again == pytest.approx(best["values"]["accuracy"])  # the row is the BN-recalibrated accuracy of that subnet
    assert adapter.active_config == adapter.search_space.maximum()  # restored


def test_generator_meets_macs_budgets(adapter, loaders) -> None:
    space = adapter.search_space
    gen = train_generator(adapter, None, val_loader=loaders[1], train_loader=loaders[2], epochs=2, steps_per_epoch=40,
                          num_rows=6, bn_samples=64, seed=0)  # fmt: skip
    assert gen.meta["mode"] == "predictor"
    lo, hi = adapter.macs(space.minimum()), adapter.macs(space.maximum())
    budgets = np.linspace(lo + 0.1 * (hi - lo), hi, 6)
    configs = [generate(adapter, gen, float(b), strict=True) for b in budgets]
    assert all(adapter.macs(c) <= b for c, b in zip(configs, budgets))
    assert adapter.macs(configs[-1]) > adapter.macs(configs[0])  # a larger budget buys a larger subnet


def test_quality_report_on_the_foreign_supernet(adapter, loaders, tmp_path) -> None:
    train, val, _ = loaders
    report = quality_report(adapter, train, val, num_subnets=4, finetune_epochs=1, bn_samples=64, top_k=2,
                            proxies=("synflow",), progress=False, out_dir=tmp_path)  # fmt: skip
    assert report.reference == "standalone_acc" and len(report.rows) == 4
    assert {"inherited_acc", "inherited_bn_acc", "macs", "params", "proxy:synflow"} <= set(report.correlations)
    assert all({"kendall_tau", "spearman_rho"} <= set(c) for c in report.correlations.values())
    macs = [r["macs"] for r in report.rows]
    assert macs == sorted(macs) and macs[0] == adapter.macs(adapter.search_space.minimum())
    assert all(r["params"] == adapter.params(r["config"]) for r in report.rows)
    assert adapter.active_config == adapter.search_space.maximum()


def test_a_missing_member_is_named_once() -> None:
    class NoMacs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.search_space = SearchSpace([Variable("ks", "0", KS)])
            self.active_config = self.search_space.maximum()

        def activate(self, config: dict | None) -> None:
            self.active_config = self.search_space.validate(config)

    with pytest.raises(SupernetProtocolError, match=r"macs\(config\) -> int.*needed by objective 'macs'"):
        search(NoMacs(), None, lambda m, d: 0.0, [None], num_evals=4, progress=False)
    with pytest.raises(SupernetProtocolError, match=r"params\(config\).*quality_report\(\)"):
        quality_report(NoMacs(), [None], [None], progress=False)
    no_space = types.SimpleNamespace(search_space=object(), activate=print, macs=len)
    with pytest.raises(SupernetProtocolError, match="search space .object. lacks variables, size"):
        search(no_space, None, objectives=["macs"], progress=False)


def test_the_package_supernetwork_satisfies_the_same_protocol() -> None:
    from nncf_bootstrapnas.elasticity import create_supernet
    from nncf_bootstrapnas.searchable import MEMBERS, missing_members

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
    sn = create_supernet(model, {"available_elasticity_dims": ["width"]}, example_input=torch.zeros(1, 3, 8, 8))
    assert isinstance(sn, SearchableSupernet) and not missing_members(sn, {"all": MEMBERS})
