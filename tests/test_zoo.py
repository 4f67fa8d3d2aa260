"""The torchvision tier (``make test-zoo``): real architectures with random weights (never downloaded).

torchvision cannot import with the CPU torch wheel of the main environment, so these run in ``.venv-zoo``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nncf_bootstrapnas.elasticity import create_supernet
from nncf_bootstrapnas.graph.macs import count_macs

pytestmark = pytest.mark.zoo
torchvision = pytest.importorskip("torchvision")

ZOO = [
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "densenet121",
    "shufflenet_v2_x1_0",
    "convnext_tiny",
    "vit_b_16",
    "swin_t",
    "squeezenet1_0",
    "googlenet",
    "inception_v3",
]
OPTIONS = {"width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}}


@pytest.mark.parametrize("name", ZOO)
def test_torchvision_model_converts_and_extracts_exactly(name: str) -> None:
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    size = 299 if name == "inception_v3" else 224
    x = torch.randn(1, 3, size, size)
    sn = create_supernet(model, OPTIONS, example_input=x).eval()
    assert sn.search_space.size > 1
    assert set(model.state_dict()) <= set(sn.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(sn(x), model(x))
    rng = np.random.default_rng(0)
    space = sn.search_space
    for cfg in (space.minimum(), space.sample(rng), space.sample(rng)):
        sn.activate(cfg)
        sub = sn.extract().eval()
        with torch.no_grad():
            torch.testing.assert_close(sub(x), sn(x), atol=1e-4, rtol=1e-4)
        assert sn.macs() == count_macs(sub, x)
        assert sn.params() == sum(p.numel() for p in sub.parameters())
    assert sn.macs(space.minimum()) < sn.macs(space.maximum())


def test_readme_one_liner() -> None:
    cfg = {"bootstrapNAS": {"training": {"elasticity": OPTIONS}}, "input_info": {"sample_size": [1, 3, 64, 64]}}
    sn = create_supernet(torchvision.models.resnet50(), cfg)
    sn.activate(sn.search_space.sample(np.random.default_rng(0)))
    sub = sn.extract()
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in torchvision.models.resnet50().parameters())
