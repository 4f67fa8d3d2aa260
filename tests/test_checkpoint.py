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

from nncf_bootstrapnas.training import CheckpointError, TrainingData, fit
from nncf_bootstrapnas.training.checkpoint import atomic_save, rng_state, set_rng_state
from nncf_bootstrapnas.training.loop import read_training_checkpoint

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
config = fake_config(sampling={"strategy": "sandwich"}, seed=3, checkpoint_every_steps=3)
trainer.fit(FakeSupernet(dropout=0.2), trainer.TrainingData(train, val), config, checkpoint_dir=sys.argv[1],
            progress=False)
"""


def _fit_kill_config():
    return fake_config(sampling={"strategy": "sandwich"}, seed=3, checkpoint_every_steps=3)


@pytest.mark.integration  # a child process, killed mid-epoch
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    victim = run_script(_SCRIPT, str(tmp_path), "12")  # 8 steps per epoch: dies at step 4 of epoch 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train, val = fake_loaders()
        torch.manual_seed(1)
        full = fit(FakeSupernet(dropout=0.2), TrainingData(train, val), _fit_kill_config(), progress=False)
        out, _ = victim.communicate(timeout=120)
        assert victim.returncode == -signal.SIGKILL, out
        state = read_training_checkpoint(tmp_path / "supernet_last.pth").training
        assert (state["epoch"], state["step_in_epoch"], state["step"]) == (1, 3, 11)  # last mid-epoch checkpoint
        torch.manual_seed(99)
        resumed = fit(FakeSupernet(dropout=0.2), TrainingData(train, val), _fit_kill_config(),
                      checkpoint_dir=tmp_path, resume=True, progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert resumed.resumed_from is not None and resumed.epochs_run == 1
    assert_states_close(state_of(full.supernet), state_of(resumed.supernet), atol=1e-6)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temporary file left behind


def test_real_supernet_resume_equals_uninterrupted(tmp_path, monkeypatch):
    import nncf_bootstrapnas.training.trainer as trainer

    train, val = digits(n_train=32, n_val=16)
    config = training_config(sampling={"strategy": "sandwich", "num_random": 1}, seed=5, checkpoint_every_steps=1)
    data = TrainingData(train, val)
    torch.manual_seed(0)
    full = fit(tiny_net(channels=8), data, config, progress=False)
    real_step, calls = trainer.train_step, [0]

    def failing_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 6:  # 2 steps per epoch: the last stage, after reorganised weights and a mid-epoch checkpoint
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", failing_step)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_net(channels=8), data, config, checkpoint_dir=tmp_path, progress=False)
    monkeypatch.setattr(trainer, "train_step", real_step)
    assert read_training_checkpoint(tmp_path / "supernet_last.pth").training["step_in_epoch"] == 1
    resumed = fit(tiny_net(channels=8), data, config, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert resumed.epochs_run == 1
    assert_states_close(state_of(full.supernet), state_of(resumed.supernet), atol=1e-6)


def test_checkpoint_is_plain_data(tmp_path):
    train, val = fake_loaders()
    fit(FakeSupernet(), TrainingData(train, val), fake_config(), checkpoint_dir=tmp_path, progress=False)
    ckpt = torch.load(tmp_path / "supernet_last.pth", weights_only=True)
    best = torch.load(tmp_path / "supernet_best.pth", weights_only=True)
    assert (ckpt["format"], ckpt["version"], ckpt["kind"]) == ("nncf_bootstrapnas.supernet", 1, "training_checkpoint")
    state = ckpt["training"]
    assert state["epoch"] == 2 and state["step_in_epoch"] == 0 and state["step"] == 16
    assert set(ckpt["weights"]) == set(FakeSupernet().state_dict())
    assert ckpt["quantization"] is None and ckpt["model"] is None  # fit knows no factory of the model
    assert state["controller"]["scheduler"]["current_stage_idx"] == 1
    assert state["optimizer"]["state"]  # momentum buffers
    assert {"python", "numpy", "torch"} <= set(state["rng"][0])
    assert state["metrics"]["max"]["acc1"] >= 0 and best["training"]["best"]["stage"] == 1
    assert type(state["config"]) is dict


def test_interrupted_in_process_resume_equals_uninterrupted(tmp_path, monkeypatch):
    import nncf_bootstrapnas.training.trainer as trainer

    config = fake_config(sampling={"strategy": "sandwich", "num_random": 1}, checkpoint_every_steps=2)
    train, val = fake_loaders()
    data = TrainingData(train, val)
    torch.manual_seed(0)
    full = fit(FakeSupernet(), data, config, progress=False)
    real_step, calls = trainer.train_step, [0]

    def failing_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 11:  # epoch 2, after the mid-epoch checkpoint at its step 2
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", failing_step)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(FakeSupernet(), data, config, checkpoint_dir=tmp_path, progress=False)
    monkeypatch.setattr(trainer, "train_step", real_step)
    torch.manual_seed(123)  # resuming must not depend on the caller's RNG
    resumed = fit(FakeSupernet(), data, config, checkpoint_dir=tmp_path, resume=True, progress=False)
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
    data = TrainingData(train, val)
    fit(FakeSupernet(), data, fake_config(), checkpoint_dir=tmp_path, progress=False)
    good = (tmp_path / "supernet_last.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*cut.pth"):
        fit(FakeSupernet(), data, fake_config(), resume=tmp_path / "cut.pth", progress=False)
    torch.save({"state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a nncf_bootstrapnas supernet artifact or training checkpoint"):
        read_training_checkpoint(tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        read_training_checkpoint(tmp_path / "missing.pth")


def test_other_model_or_elasticity_config_is_named(tmp_path):
    train, val = digits(n_train=32, n_val=16)
    one_stage = [{"train_dims": ["kernel", "width"], "epochs": 1, "width_indicator": 2}]
    config = training_config(one_stage, sampling={"strategy": "single"})
    data = TrainingData(train, val)
    fit(tiny_net(), data, config, checkpoint_dir=tmp_path, progress=False)
    last = tmp_path / "supernet_last.pth"
    with pytest.raises(
        CheckpointError,
        match=r"another architecture.*shape mismatches: fc\.weight: checkpoint \(10, 16\) vs model \(10, 12\).*26 in all",
    ):
        fit(tiny_net(channels=12), data, config, resume=last, progress=False)
    other = training_config(one_stage, elasticity={"width": {"min_width": 8, "width_step": 8}})
    with pytest.raises(
        CheckpointError,
        match=r"different elasticity config.*width/stem\.0: checkpoint choices \[16, 12, 8, 4\] vs model \[16, 8\]",
    ):
        fit(tiny_net(), data, other, resume=last, progress=False)
    sn = FakeSupernet()
    with pytest.raises(CheckpointError, match="only in the checkpoint"):
        fit(sn, data, fake_config(), resume=last, progress=False)


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
    import nncf_bootstrapnas.training.loop as loop

    seen = []
    real = loop.atomic_save
    monkeypatch.setattr(
        loop, "atomic_save", lambda data, path: seen.append((data["training"]["epoch"], path.name)) or real(data, path)
    )
    train, _ = fake_loaders(n=16)
    fit(FakeSupernet(), TrainingData(train), fake_config(checkpoint_every_epochs=0), checkpoint_dir=tmp_path,
        progress=False)  # fmt: skip
    assert seen == [(2, "supernet_last.pth"), (2, "supernet_best.pth")]  # only at the end


# ---- the supernet artifact -----------------------------------------------------------------------------------------
def _trained_qat_supernet():
    from nncf_bootstrapnas.training import compose

    train, _ = digits(n_train=32, n_val=16)
    config = {
        **training_config(),
        "compression": [{"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 16}}}],
    }
    composition = compose(tiny_net(channels=8), config, calibration_data=train, with_training=True)
    supernet = composition.model
    supernet.activate(supernet.search_space.minimum())
    return supernet, next(iter(train))[0]


def test_artifact_round_trip_rebuilds_the_quantized_supernet_from_its_factory(tmp_path):
    from nncf_bootstrapnas import load_supernet, save_supernet
    from nncf_bootstrapnas.models import ModelRef
    from nncf_bootstrapnas.training import read_artifact

    supernet, x = _trained_qat_supernet()
    ref = ModelRef("test_training_support:tiny_net", {"channels": 8})
    path = save_supernet(tmp_path / "supernet.pth", supernet, model=ref, original=tiny_net(channels=8),
                         meta={"note": "test"})  # fmt: skip
    raw = torch.load(path, weights_only=True)  # plain data only
    assert (raw["format"], raw["version"], raw["kind"]) == ("nncf_bootstrapnas.supernet", 1, "supernet")
    assert raw["quantization"] is not None and raw["quantizer_weights"]
    loaded = load_supernet(path)  # nothing but the file: the model is rebuilt from the recorded factory
    assert loaded.active_config == supernet.active_config
    supernet.eval()
    for cfg in (None, supernet.search_space.minimum()):
        supernet.activate(cfg)
        loaded.activate(cfg)
        assert torch.allclose(loaded(x), supernet(x), atol=1e-6)
    artifact = read_artifact(path)
    assert artifact.meta == {"note": "test"} and artifact.model == ref
    original = artifact.build_original()
    assert all(torch.equal(v, tiny_net(channels=8).state_dict()[k]) for k, v in original.state_dict().items())


def test_artifact_errors_name_the_problem(tmp_path):
    from nncf_bootstrapnas import load_supernet, save_supernet
    from nncf_bootstrapnas.training import read_artifact

    torch.save(tiny_net().state_dict(), tmp_path / "weights.pth")
    with pytest.raises(CheckpointError, match=r"weights.pth is not a nncf_bootstrapnas supernet artifact.*keys"):
        read_artifact(tmp_path / "weights.pth")
    torch.save({"format": "nncf_bootstrapnas.supernet", "version": 2}, tmp_path / "future.pth")
    with pytest.raises(CheckpointError, match="version 2 is not supported .*reads 1"):
        read_artifact(tmp_path / "future.pth")
    torch.save({"format": "nncf_bootstrapnas.cli.supernet/1"}, tmp_path / "old.pth")
    with pytest.raises(CheckpointError, match="earlier version .*train again"):
        read_artifact(tmp_path / "old.pth")
    from nncf_bootstrapnas.elasticity import create_supernet

    supernet = create_supernet(tiny_net(channels=8), training_config())
    path = save_supernet(tmp_path / "anonymous.pth", supernet)  # no model reference
    with pytest.raises(CheckpointError, match="does not record how to build its model.*model="):
        load_supernet(path)
    assert load_supernet(path, tiny_net(channels=8)).search_space.to_json() == supernet.search_space.to_json()
    with pytest.raises(CheckpointError, match="another architecture"):
        load_supernet(path, tiny_net(channels=12))
    train, val = fake_loaders()
    with pytest.raises(CheckpointError, match="without training state; resume from a training checkpoint"):
        fit(tiny_net(channels=8), TrainingData(train, val), training_config(), resume=path, progress=False)


def test_a_training_checkpoint_is_a_supernet_artifact(tmp_path):
    from nncf_bootstrapnas import load_supernet

    train, val = digits(n_train=32, n_val=16)
    res = fit(tiny_net(channels=8), TrainingData(train, val), training_config(), checkpoint_dir=tmp_path,
              progress=False)  # fmt: skip
    loaded = load_supernet(res.last_checkpoint, tiny_net(channels=8))
    assert_states_close(state_of(loaded), state_of(res.supernet))
    assert loaded.stage_space.to_json() == res.supernet.stage_space.to_json()  # the last stage's restriction
