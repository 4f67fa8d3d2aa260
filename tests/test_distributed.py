"""Data-parallel training (one mechanism for every path: gradients averaged in ``optimizer.step()``): 2 gloo processes
on CPU end with identical weights, equal to one process on the union of their batches, for ``fit`` (sandwich steps:
several subnets per step, some parameters unused in some passes) and for the legacy facade (the user's epoch
function owns forward, backward and ``optimizer.step()``)."""

from __future__ import annotations

import socket

import pytest
import torch
from test_training_support import (
    assert_states_close,
    digits,
    legacy_train_epoch,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
    run_script,
    tiny_net,
    training_config,
)
from torch.utils.data import DataLoader

from nncf_bootstrapnas.training import EpochBasedTrainingAlgorithm, TrainingData, fit

pytestmark = pytest.mark.slow  # two extra processes

_WORKER = r"""
import os, sys, torch, torch.distributed as dist
from pathlib import Path
from torch.utils.data import DataLoader, DistributedSampler
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank = dist.get_rank()
from test_training_support import digits, legacy_train_epoch, tiny_net, training_config, top1
from nncf_bootstrapnas.training import EpochBasedTrainingAlgorithm, TrainingData, fit
out = Path(sys.argv[1])
train, val = digits(n_train=64, n_val=16, batch=8)  # per-rank batch 8: global batch 16
config = training_config(sampling={"strategy": "sandwich", "num_random": 2}, seed=11)
res = fit(tiny_net(bn=False, dropout=0.0, channels=8), TrainingData(train, val), config,
          checkpoint_dir=out / f"rank{rank}", progress=False)
torch.save(res.supernet.state_dict(), out / f"fit{rank}.pt")
ranked = DataLoader(train.dataset, batch_size=8, sampler=DistributedSampler(train.dataset, shuffle=False))
model = tiny_net(bn=False, dropout=0.0, channels=8)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
legacy = EpochBasedTrainingAlgorithm.from_config(model, config)
supernet, _ = legacy.run(legacy_train_epoch, ranked, top1, val, optimizer, str(out / f"legacy{rank}"))
torch.save(supernet.state_dict(), out / f"legacy{rank}.pt")
print("RANK", rank, "DONE")
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.state_dict().items()}


def test_two_gloo_ranks_match_each_other_and_a_single_process(tmp_path):
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    procs = [run_script(_WORKER, str(tmp_path), env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in range(2)]
    from test_training_support import top1

    train, val = digits(n_train=64, n_val=16, batch=16)  # the union of the two ranks' batches
    config = training_config(sampling={"strategy": "sandwich", "num_random": 2}, seed=11)
    single = fit(tiny_net(bn=False, dropout=0.0, channels=8), TrainingData(train, val), config, progress=False)
    model = tiny_net(bn=False, dropout=0.0, channels=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ordered = DataLoader(train.dataset, batch_size=16, shuffle=False)
    legacy, _ = EpochBasedTrainingAlgorithm.from_config(model, config).run(
        legacy_train_epoch, ordered, top1, val, optimizer, str(tmp_path / "legacy_single")
    )
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
    initial = tiny_net(bn=False, dropout=0.0, channels=8).state_dict()
    for kind, reference in (("fit", single.supernet), ("legacy", legacy)):
        rank0 = torch.load(tmp_path / f"{kind}0.pt", weights_only=True)
        rank1 = torch.load(tmp_path / f"{kind}1.pt", weights_only=True)
        assert_states_close(rank0, rank1)  # bitwise: the same averaged gradients on both ranks
        assert_states_close(rank0, _weights(reference), atol=1e-5)
        assert any(not torch.allclose(initial[k], rank0[k]) for k in initial), kind  # it did train
    assert (tmp_path / "rank0" / "supernet_last.pth").is_file()
    assert not (tmp_path / "rank1").exists() or not list((tmp_path / "rank1").iterdir())  # only rank 0 writes
