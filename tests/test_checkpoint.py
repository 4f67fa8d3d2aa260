"""Checkpoints: plain data, atomic writes, exact resume after SIGKILL, and errors naming what does not fit."""

from __future__ import annotations

import os
import random
import signal

import numpy as np
import pytest
import torch
from test_training_support import (
    FakeSupernet,
    assert_states_close,
    digits,
    fake_config,
    fake_loaders,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
    run_script,
    state_of,
    tiny_net,
    training_config,
)

from nncf_bootstrapnas.training import CheckpointError, fit
from nncf_bootstrapnas.training.checkpoint import atomic_save, read_checkpoint, rng_state, set_rng_state

# fit in a fresh process that SIGKILLs itself when it starts training step KILL_AT (mid-epoch, after mid-epoch
# checkpoints). The test double keeps the child cheap (no graph tracing); the real super-network's resume is checked
# in process by test_real_supernet_resume_equals_uninterrupted.
_SCRIPT = r"""
import os, signal, sys, torch
import nncf_bootstrapnas.training.trainer as trainer
from test_training_support import FakeSupernet, fake_config, fake_loaders
torch.set_num_threads(1)
kill_at, real_step, calls = int(sys.argv[2]), trainer.train_step, [0]
def step(*args, **kwargs):
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    calls[0] += 1
    return real_step(*args, **kwargs)
trainer.train_step = step
torch.manual_seed(1)
train, val = fake_loaders()
trainer.fit(FakeSupernet(dropout=0.2), train, val, config=fake_config(sampling={"strategy": "sandwich"}, seed=3),
            checkpoint_dir=sys.argv[1], checkpoint_every_steps=3, progress=False)
"""


def _fit_kill_config():
    return fake_config(sampling={"strategy": "sandwich"}, seed=3)


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    victim = run_script(_SCRIPT, str(tmp_path), "12")  # 8 steps per epoch: dies at step 4 of epoch 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train, val = fake_loaders()
        torch.manual_seed(1)
        full = fit(FakeSupernet(dropout=0.2), train, val, config=_fit_kill_config(), progress=False)
        out, _ = victim.communicate(timeout=120)
        assert victim.returncode == -signal.SIGKILL, out
        ckpt = read_checkpoint(tmp_path / "supernet_last.pth")
        assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["step"]) == (1, 3, 11)  # last mid-epoch checkpoint
        torch.manual_seed(99)
        resumed = fit(FakeSupernet(dropout=0.2), train, val, config=_fit_kill_config(), checkpoint_dir=tmp_path,
                      resume=True, progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert resumed.resumed_from is not None and resumed.epochs_run == 1
    assert_states_close(state_of(full.supernet), state_of(resumed.supernet), atol=1e-6)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temporary file left behind


def test_real_supernet_resume_equals_uninterrupted(tmp_path, monkeypatch):
    import nncf_bootstrapnas.training.trainer as trainer

    train, val = digits(n_train=32, n_val=16)
    config = training_config(sampling={"strategy": "sandwich", "num_random": 1}, seed=5)
    torch.manual_seed(0)
    full = fit(tiny_net(channels=8), train, val, config=config, progress=False)
    real_step, calls = trainer.train_step, [0]

    def failing_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 6:  # 2 steps per epoch: the last stage, after reorganised weights and a mid-epoch checkpoint
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", failing_step)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_net(channels=8), train, val, config=config, checkpoint_dir=tmp_path, checkpoint_every_steps=1,
            progress=False)  # fmt: skip
    monkeypatch.setattr(trainer, "train_step", real_step)
    assert read_checkpoint(tmp_path / "supernet_last.pth")["step_in_epoch"] == 1
    resumed = fit(tiny_net(channels=8), train, val, config=config, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert resumed.epochs_run == 1
    assert_states_close(state_of(full.supernet), state_of(resumed.supernet), atol=1e-6)


def test_checkpoint_is_plain_data(tmp_path):
    train, val = fake_loaders()
    fit(FakeSupernet(), train, val, config=fake_config(), checkpoint_dir=tmp_path, progress=False)
    ckpt = torch.load(tmp_path / "supernet_last.pth", weights_only=True)
    best = torch.load(tmp_path / "supernet_best.pth", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["step_in_epoch"] == 0 and ckpt["step"] == 16
    assert set(ckpt["model_state"]) == set(FakeSupernet().state_dict())
    assert ckpt["controller"]["scheduler"]["current_stage_idx"] == 1
    assert ckpt["optimizer"]["state"]  # momentum buffers
    assert {"python", "numpy", "torch"} <= set(ckpt["rng"][0])
    assert ckpt["metrics"]["max"]["acc1"] >= 0 and best["best"]["stage"] == 1
    assert type(ckpt["training_config"]) is dict


def test_interrupted_in_process_resume_equals_uninterrupted(tmp_path, monkeypatch):
    import nncf_bootstrapnas.training.trainer as trainer

    config = fake_config(sampling={"strategy": "sandwich", "num_random": 1})
    train, val = fake_loaders()
    torch.manual_seed(0)
    full = fit(FakeSupernet(), train, val, config=config, progress=False)
    real_step, calls = trainer.train_step, [0]

    def failing_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 11:  # epoch 2, after the mid-epoch checkpoint at its step 2
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", failing_step)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(
            FakeSupernet(), train, val, config=config, checkpoint_dir=tmp_path, checkpoint_every_steps=2, progress=False
        )
    monkeypatch.setattr(trainer, "train_step", real_step)
    torch.manual_seed(123)  # resuming must not depend on the caller's RNG
    resumed = fit(FakeSupernet(), train, val, config=config, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert resumed.resumed_from == tmp_path / "supernet_last.pth" and resumed.epochs_run == 1
    assert_states_close(state_of(full.supernet), state_of(resumed.supernet))


def test_rng_state_round_trip_through_weights_only(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = rng_state()
    atomic_save({"rng": state}, tmp_path / "r.pth")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(torch.load(tmp_path / "r.pth", weights_only=True)["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_corrupt_and_foreign_files_raise_checkpoint_error(tmp_path):
    train, val = fake_loaders()
    fit(FakeSupernet(), train, val, config=fake_config(), checkpoint_dir=tmp_path, progress=False)
    good = (tmp_path / "supernet_last.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*cut.pth"):
        fit(FakeSupernet(), train, val, config=fake_config(), resume=tmp_path / "cut.pth", progress=False)
    torch.save({"state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a nncf_bootstrapnas training checkpoint"):
        read_checkpoint(tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "missing.pth")


def test_other_model_or_elasticity_config_is_named(tmp_path):
    train, val = digits(n_train=32, n_val=16)
    one_stage = [{"train_dims": ["kernel", "width"], "epochs": 1, "width_indicator": 2}]
    config = training_config(one_stage, sampling={"strategy": "single"})
    fit(tiny_net(), train, val, config=config, checkpoint_dir=tmp_path, progress=False)
    last = tmp_path / "supernet_last.pth"
    with pytest.raises(
        CheckpointError,
        match=r"another architecture.*shape mismatches: fc\.weight: checkpoint \(10, 16\) vs model \(10, 12\).*26 in all",
    ):
        fit(tiny_net(channels=12), train, val, config=config, resume=last, progress=False)
    other = training_config(one_stage, elasticity={"width": {"min_width": 8, "width_step": 8}})
    with pytest.raises(
        CheckpointError,
        match=r"different elasticity config.*width/stem\.0: checkpoint choices \[16, 12, 8, 4\] vs model \[16, 8\]",
    ):
        fit(tiny_net(), train, val, config=other, resume=last, progress=False)
    sn = FakeSupernet()
    with pytest.raises(CheckpointError, match="only in the checkpoint"):
        fit(sn, train, val, config=fake_config(), resume=last, progress=False)


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = atomic_save({"v": torch.arange(3)}, tmp_path / "supernet_last.pth")

    def dying_save(obj, f):  # noqa: ANN001
        f.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"v": torch.arange(5)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["v"], torch.arange(3))
    assert os.listdir(tmp_path) == ["supernet_last.pth"]


def test_checkpoint_every_epochs_without_validation(tmp_path, monkeypatch):
    import nncf_bootstrapnas.training.trainer as trainer

    seen = []
    real = trainer.atomic_save
    monkeypatch.setattr(
        trainer, "atomic_save", lambda data, path: seen.append((data["epoch"], path.name)) or real(data, path)
    )
    train, _ = fake_loaders(n=16)
    fit(
        FakeSupernet(),
        train,
        None,
        config=fake_config(checkpoint_every_epochs=0),
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert seen == [(2, "supernet_last.pth"), (2, "supernet_best.pth")]  # only at the end
