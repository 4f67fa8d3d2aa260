"""Reference models: build, forward/backward, standard structure; pretraining learns."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from examples.pretrain import main
from nncf_bootstrapnas.data import IGNORE_INDEX, DigitsDataModule
from nncf_bootstrapnas.evaluation import top1_accuracy as evaluate_accuracy
from nncf_bootstrapnas.models import (
    INPUT_SHAPES,
    MODELS,
    SMALL_KWARGS,
    build_model,
    data_kwargs,
    example_input,
    input_shape,
    load_pretrained,
    pretrain,
)
from nncf_bootstrapnas.models.efficientnet import StochasticDepth

NAMES = sorted(MODELS)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread in this module


def expected_shape(name: str, batch: int, num_classes: int) -> tuple[int, ...]:
    return (batch, num_classes, 32, 32) if name == "unet" else (batch, num_classes)


def test_registry_is_complete():
    assert set(MODELS) == {
        "resnet18",
        "resnet50",
        "mobilenet_v2",
        "mobilenet_v3",
        "efficientnet_b0",
        "vgg11_bn",
        "densenet",
        "unet",
        "tcn",
        "transformer",
    }
    assert set(SMALL_KWARGS) == set(MODELS) == set(INPUT_SHAPES)
    with pytest.raises(KeyError, match="resnet18"):
        build_model("resnet19")


@pytest.mark.parametrize("name", NAMES)
def test_small_model_forward_train_eval_and_backward(name, reference_model):
    model = reference_model(name, num_classes=7)
    x = example_input(name, batch=4)
    assert x.shape == (4, *input_shape(name))
    assert sum(p.numel() for p in model.parameters()) > 0
    with torch.no_grad():
        out_eval = model(x)
        assert torch.equal(out_eval, model(x))  # eval mode is deterministic
    assert out_eval.shape == expected_shape(name, 4, 7)
    model.train()
    out = model(x)
    assert out.shape == expected_shape(name, 4, 7) and torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_full_size_model_runs(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    small = build_model(name, small=True)
    n_full = sum(p.numel() for p in model.parameters())
    assert n_full > sum(p.numel() for p in small.parameters())
    with torch.no_grad():
        out = model(example_input(name, batch=1))
    assert out.shape == expected_shape(name, 1, 10) and torch.isfinite(out).all()


def test_resnets_have_the_reference_cifar_structure():
    # Parameter counts of the standard CIFAR ResNet-18/50 (3x3 stem, 10 classes), e.g. kuangliu/pytorch-cifar.
    assert sum(p.numel() for p in build_model("resnet18").parameters()) == 11_173_962
    assert sum(p.numel() for p in build_model("resnet50").parameters()) == 23_520_842
    names = dict(build_model("resnet18", width=0.25).named_modules())
    assert "layer1.0.downsample" not in names or names["layer1.0.downsample"] is None
    assert isinstance(names["layer2.0.downsample.0"], nn.Conv2d)
    assert names["layer2.0.downsample.0"].stride == (2, 2)
    assert names["layer1.0.conv1"].out_channels == 16 and names["fc"].in_features == 128
    r50 = dict(build_model("resnet50", width=0.25).named_modules())
    assert isinstance(r50["layer1.0.downsample.0"], nn.Conv2d)  # channel expansion 16 -> 64
    assert r50["layer4.2.conv3"].out_channels == 4 * r50["layer4.2.conv1"].out_channels


def test_vgg_classifier_flattens_a_spatial_map():
    model = build_model("vgg11_bn", small=True).eval()
    with torch.no_grad():
        features = model.features(example_input("vgg11_bn", 2))
    assert features.shape[-2:] == (2, 2)
    assert model.classifier[0].in_features == features.shape[1] * 4


def test_mobilenets_use_depthwise_and_residuals():
    for name, kernels in (("mobilenet_v2", {3}), ("mobilenet_v3", {3, 5}), ("efficientnet_b0", {3, 5})):
        model = build_model(name)
        depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1]
        assert depthwise and {m.kernel_size[0] for m in depthwise} == kernels, name
        assert all(m.padding[0] == (m.kernel_size[0] - 1) // 2 for m in depthwise)
        assert any(getattr(m, "use_res_connect", False) for m in model.modules()), name


def test_stochastic_depth_is_identity_in_eval_and_unbiased_in_training():
    sd = StochasticDepth(0.5)
    x = torch.ones(4000, 3)
    assert torch.equal(sd.eval()(x), x)
    torch.manual_seed(0)
    y = sd.train()(x)
    kept = y[:, 0] != 0
    assert 0.4 < kept.float().mean() < 0.6  # whole samples dropped ...
    assert torch.equal(y[kept], torch.full_like(y[kept], 2.0))  # ... and survivors rescaled by 1 / (1 - p)
    with pytest.raises(ValueError):
        StochasticDepth(1.0)


def test_explicit_attention_matches_torch_multihead_attention():
    torch.manual_seed(0)
    explicit = build_model("transformer", small=True).eval()
    fused = build_model("transformer", small=True, attention="torch").eval()
    state = {k: v for k, v in explicit.state_dict().items() if ".attn." not in k}
    for i, block in enumerate(explicit.blocks):
        mha = f"blocks.{i}.attn.attn."
        a = block.attn
        state[mha + "in_proj_weight"] = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
        state[mha + "in_proj_bias"] = torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])
        state[mha + "out_proj.weight"] = a.out_proj.weight
        state[mha + "out_proj.bias"] = a.out_proj.bias
    fused.load_state_dict(state)
    x = example_input("transformer", 3)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), explicit(x), rtol=1e-4, atol=1e-5)


def test_unet_and_tcn_keep_resolution():
    unet = build_model("unet", small=True).eval()
    assert any(isinstance(m, nn.ConvTranspose2d) for m in unet.modules())
    with torch.no_grad():
        assert unet(torch.randn(1, 3, 16, 16)).shape == (1, 10, 16, 16)
    tcn = build_model("tcn", small=True).eval()
    dilations = [m.dilation[0] for m in tcn.modules() if isinstance(m, nn.Conv1d) and m.kernel_size[0] > 1]
    assert dilations == [1, 1, 2, 2, 4, 4]
    with torch.no_grad():
        assert tcn.network(torch.randn(2, 1, 50)).shape == (2, 16, 50)


@pytest.mark.parametrize("name", ["resnet18", "tcn", "unet"])
def test_data_kwargs_match_the_model_input(name):
    dm = DigitsDataModule(batch_size=8, **data_kwargs(name))
    assert dm.input_shape == input_shape(name)
    images, targets = next(iter(dm.val_loader()))
    model = build_model(name, small=True).eval()
    with torch.no_grad():
        out = model(images)
    assert out.shape[0] == 8 and out.shape[2:] == targets.shape[1:]


def test_evaluate_accuracy_counts_correct_predictions(digits_module):
    loader = digits_module.subset_loader(100, split="val")
    labels = torch.cat([y for _, y in loader])

    class Constant(nn.Module):
        def __init__(self, cls: int) -> None:
            super().__init__()
            self.cls = cls
            self.dummy = nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.one_hot(torch.full((len(x),), self.cls), 10).float() + self.dummy

    for cls in (0, 3):
        model = Constant(cls).train()
        assert evaluate_accuracy(model, loader) == pytest.approx(100.0 * float((labels == cls).float().mean()))
        assert model.training  # mode restored


def test_pretrain_beats_chance(digits_module):
    torch.manual_seed(0)
    model = build_model("resnet18", width=0.25)
    train = digits_module.subset_loader(480, split="train", shuffle=True)
    val = digits_module.subset_loader(200, split="val")
    before = evaluate_accuracy(model, val)
    model, acc = pretrain(model, train, val, epochs=1, seed=0)
    assert not model.training
    assert acc > 30.0 and acc > before + 10.0
    assert acc == evaluate_accuracy(model, val)


def test_pretrain_cli_saves_and_reloads(tmp_path):
    out = tmp_path / "tcn.pth"
    argv = ["--model", "tcn", "--small", "--epochs", "2", "--optimizer", "sgd", "--lr", "0.1", "--out", str(out)]
    assert main(argv) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model"] == "tcn" and meta["data"]["layout"] == "sequence"
    assert meta["val_accuracy"] > 30.0
    model = load_pretrained(out)
    dm = DigitsDataModule(**meta["data"])
    assert evaluate_accuracy(model, dm.val_loader()) == pytest.approx(meta["val_accuracy"])


def test_pretrain_segmentation_unet():
    """Per-pixel targets flow through the loss and the metric: the UNet fits a small training set."""
    dm = DigitsDataModule(batch_size=32, **data_kwargs("unet"))
    train = dm.subset_loader(64, "train", shuffle=True)
    fixed = dm.subset_loader(64, "train")
    torch.manual_seed(0)
    model = build_model("unet", small=True)
    images, masks = next(iter(fixed))

    def loss() -> float:
        with torch.no_grad():
            return float(nn.functional.cross_entropy(model.eval()(images), masks, ignore_index=IGNORE_INDEX))

    before_loss, before_acc = loss(), evaluate_accuracy(model, fixed)
    _, acc = pretrain(model, train, fixed, epochs=10, lr=1e-2, optimizer="adamw")
    assert loss() < 0.9 * before_loss
    assert acc > 25.0 and acc > before_acc + 10.0  # stroke-pixel accuracy; chance is ~10%


def test_pretrain_is_reproducible():
    """Same start, new loaders (each seeds its own generator) and the same seed give bit-identical weights."""
    dm = DigitsDataModule(batch_size=16, **data_kwargs("tcn"))
    start = copy.deepcopy(build_model("tcn", small=True, dropout=0.5).state_dict())

    def run(seed: int) -> tuple[dict, float]:
        model = build_model("tcn", small=True, dropout=0.5)
        model.load_state_dict(start)
        train, val = dm.subset_loader(96, "train", shuffle=True), dm.subset_loader(32, "val")
        model, acc = pretrain(model, train, val, epochs=1, seed=seed)
        return model.state_dict(), acc

    (first, acc1), (second, acc2), (other, _) = run(3), run(3), run(4)
    assert acc1 == acc2
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)  # dropout draws depend on the seed
