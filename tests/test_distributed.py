"""Data-parallel training: 2 gloo processes on CPU end with identical weights, equal to one process on the union of
their batches (sandwich sampling with skipped blocks, so some parameters are unused in some passes)."""

from __future__ import annotations

import socket

import torch
from test_training_support import (
    assert_states_close,
    digits,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
    run_script,
    tiny_net,
    training_config,
)

from nncf_bootstrapnas.training import fit

_WORKER = r"""
import os, sys, torch, torch.distributed as dist
from pathlib import Path
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank = dist.get_rank()
from test_training_support import tiny_net, training_config, digits
from nncf_bootstrapnas.training import fit
out = Path(sys.argv[1])
train, val = digits(n_train=64, n_val=16, batch=8)  # per-rank batch 8: global batch 16
config = training_config(sampling={"strategy": "sandwich", "num_random": 2}, seed=11)
res = fit(tiny_net(bn=False, dropout=0.0, channels=8), train, val, config=config, checkpoint_dir=out / f"rank{rank}",
          progress=False)
torch.save(res.supernet.state_dict(), out / f"final{rank}.pt")
print("RANK", rank, "DONE", res.history[-1]["max"]["acc1"])
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_match_each_other_and_a_single_process(tmp_path):
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    procs = [run_script(_WORKER, str(tmp_path), env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in range(2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train, val = digits(n_train=64, n_val=16, batch=16)  # the union of the two ranks' batches
        config = training_config(sampling={"strategy": "sandwich", "num_random": 2}, seed=11)
        single = fit(tiny_net(bn=False, dropout=0.0, channels=8), train, val, config=config, progress=False)
    finally:
        torch.set_num_threads(threads)
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
    rank0 = torch.load(tmp_path / "final0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "final1.pt", weights_only=True)
    assert_states_close(rank0, rank1)  # bitwise: the same averaged gradients on both ranks
    assert_states_close(rank0, {k: v.detach() for k, v in single.supernet.state_dict().items()}, atol=1e-5)
    initial = tiny_net(bn=False, dropout=0.0, channels=8).state_dict()
    assert any(not torch.allclose(initial[k], rank0[k]) for k in initial)  # it did train
    assert (tmp_path / "rank0" / "supernet_last.pth").is_file()
    assert not (tmp_path / "rank1").exists() or not list((tmp_path / "rank1").iterdir())  # only rank 0 writes
