"""Data and model flags of the CLI: --dataset, --data, --weights, --num-classes, --image-size, external --model names,
and the generation report that train/run save. Fast tests run in process on tiny data the tests write; the slow
tests run ``run`` end to end on a written Fashion-MNIST subset and on an image folder of PNGs."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nncf_bootstrapnas.cli.errors import UsageError
from nncf_bootstrapnas.data import write_idx
from nncf_bootstrapnas.data.fashion_mnist import IDX_FILES
from nncf_bootstrapnas.models import ModelError, build_model, load_weights, resolve_model

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "configs" / "digits_resnet18.json"
pytestmark = pytest.mark.usefixtures("one_thread")


def write_random_fashion(folder: Path, n_train: int = 240, n_test: int = 40) -> Path:
    """The four gzipped IDX files of a random 28x28 grey set, labels 0..9 in turn: plumbing, not accuracy."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, array in arrays.items():
        write_idx(folder / (IDX_FILES[key] + ".gz"), array)
    return folder


def write_png_folder(folder: Path, classes: tuple[str, ...] = ("ant", "bee", "cow"), per_class: int = 10) -> Path:
    """``folder/<class>/<i>.png``: 24x20 RGB images whose colour follows the class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 40, (24, 20, 3)) + np.array([80 * label, 40, 200 - 60 * label])
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / name / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory) -> Path:
    return write_random_fashion(tmp_path_factory.mktemp("fashion"))


@pytest.fixture(scope="module")
def png_dir(tmp_path_factory) -> Path:
    return write_png_folder(tmp_path_factory.mktemp("pngs"))


@pytest.fixture
def quick(monkeypatch):
    """No nncf import and no global torch settings: the session's runtime set-up is not what these tests check."""
    monkeypatch.setattr("nncf_bootstrapnas.cli.session._configure_runtime", lambda args: None)


def config_file(tmp_path: Path, **changes) -> Path:
    """The demo config without its class count (the data decides), with ``changes``."""
    config = json.loads(DEMO.read_text())
    config.pop("num_classes")
    config.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def cli_error(capsys, *argv: str) -> tuple[int, str]:
    """Exit code and the one ``error:`` line of an in-process CLI call."""
    from nncf_bootstrapnas.cli.main import main

    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return code, lines[0]


def session_for(tmp_path: Path, *flags: str, config: Path = DEMO):
    from nncf_bootstrapnas.cli.main import build_parser
    from nncf_bootstrapnas.cli.session import load

    argv = ["train", "--config", str(config), "--output-dir", str(tmp_path / "out"), "--small", *flags]
    return load(build_parser().parse_args(argv), "train")


# ---- flag parsing -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--dataset", "cifar10"], "allowed: digits, fashion-mnist, imagefolder"),
        (["--image-size", "4"], "must be in [8, 1024]"),
        (["--image-size", "big"], "expected an int"),
        (["--num-classes", "0"], "must be > 0"),
    ],
)
def test_bad_flag_values_are_one_usage_line(capsys, flags, expected):
    code, line = cli_error(capsys, "train", "--config", str(DEMO), *flags)
    assert code == 2 and expected in line


def test_help_describes_every_new_flag(capsys):
    from nncf_bootstrapnas.cli.main import main
    from nncf_bootstrapnas.data import DATASET_NAMES

    for command, flags in (("train", ["--weights FILE"]), ("run", ["--weights FILE"]), ("search", [])):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for flag in ["--dataset", "--data DIR", "--num-classes N", "--image-size S", *flags]:
            assert flag in text, (command, flag)
        assert ("--weights FILE" in text) == bool(flags)
        assert all(name in text for name in DATASET_NAMES) and "timm:NAME" in text


def test_weights_flag_needs_an_existing_file_and_excludes_checkpoint(tmp_path, capsys, quick):
    out = str(tmp_path / "out")
    code, line = cli_error(capsys, "train", "--config", str(DEMO), "--output-dir", out, "--weights", "nope.pth")
    assert code == 2 and "weights file not found: nope.pth" in line
    code, line = cli_error(capsys, "train", "--config", str(DEMO), "--output-dir", out, "--weights", str(DEMO),
                           "--checkpoint", str(DEMO))  # fmt: skip
    assert code == 2 and "pass one of them" in line


def test_image_size_sets_input_info():
    from nncf_bootstrapnas.cli.overrides import apply_overrides
    from nncf_bootstrapnas.config import load_config

    args = argparse.Namespace(image_size=64)
    config = load_config({"input_info": {"sample_size": [2, 1, 28, 28]}})
    apply_overrides(config, args)
    assert config.input_info[0]["sample_size"] == [2, 1, 64, 64]
    config = load_config({})
    apply_overrides(config, args)
    assert config.input_info == [{"sample_size": [1, 3, 64, 64], "type": "float", "filler": "ones"}]
    assert config.example_inputs()[0].shape == (1, 3, 64, 64)
    with pytest.raises(UsageError, match=r"needs image inputs \[N, C, H, W\]"):
        apply_overrides(load_config({"input_info": {"sample_size": [1, 1, 64]}}), args)


# ---- data resolution --------------------------------------------------------------------------------------------------
def test_missing_fashion_mnist_is_one_error_before_any_training(tmp_path, capsys, quick):
    out = tmp_path / "out"
    code, line = cli_error(capsys, "train", "--config", str(DEMO), "--output-dir", str(out), "--small",
                           "--dataset", "fashion-mnist", "--data", str(tmp_path / "empty"))  # fmt: skip
    assert code == 2 and "Fashion-MNIST not found" in line and "apt-get install dataset-fashion-mnist" in line
    assert not (out / "checkpoints").exists()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--dataset", "imagefolder"], "needs root (--data DIR)"),
        (["--data", "somewhere"], "takes no --data"),
        (["--dataset", "imagefolder", "--data", "no/such/dir"], "does not exist"),
    ],
)
def test_data_set_errors(tmp_path, quick, flags, expected):
    from nncf_bootstrapnas.cli.inputs import stage_data

    with pytest.raises(UsageError, match=re.escape(expected)):
        stage_data(session_for(tmp_path, *flags), 16)


def test_fashion_mnist_is_shaped_for_the_model(tmp_path, fashion_dir, quick):
    from nncf_bootstrapnas.cli.inputs import stage_data

    session = session_for(tmp_path, "--dataset", "fashion_mnist", "--data", str(fashion_dir), "--image-size", "16")
    data = stage_data(session, 32)
    images, labels = next(iter(data.train))
    assert tuple(images.shape[1:]) == data.input_shape == (3, 16, 16)  # grey 28x28 -> 3x16x16
    assert len(data.module.val_indices) == 240 // 12 and data.module.num_classes == 10
    assert session.config["input_info"][0]["sample_size"] == [1, 3, 16, 16]
    assert "Fashion-MNIST" in data.note and session.config["dataset"] == "fashion-mnist"


def test_image_folder_classes_follow_the_data_unless_given(tmp_path, png_dir, quick):
    from nncf_bootstrapnas.cli.inputs import stage_data

    config = config_file(tmp_path)
    session = session_for(tmp_path, "--dataset", "imagefolder", "--data", str(png_dir), config=config)
    data = stage_data(session, None)
    assert data.module.num_classes == 3 and session.model.args["num_classes"] == 3
    assert session.model.build()(next(iter(data.val))[0]).shape[1] == 3
    given = session_for(tmp_path, "--dataset", "imagefolder", "--data", str(png_dir), "--num-classes", "5")
    with pytest.raises(UsageError, match="the data set has 3 classes but --num-classes / num_classes is 5"):
        stage_data(given, None)


def test_a_loaded_supernet_must_fit_the_data(tmp_path, quick):
    from nncf_bootstrapnas.cli.inputs import check_supernet_data, stage_data

    session = session_for(tmp_path)
    data = stage_data(session, 16)
    traced_at_16 = argparse.Namespace(example_input=(torch.zeros(1, 3, 16, 16),))
    with pytest.raises(UsageError, match="built for inputs 3x16x16 but the data gives 3x32x32"):
        check_supernet_data(session, traced_at_16, data)


# ---- weights --------------------------------------------------------------------------------------------------------
def _saved(tmp_path: Path, model: torch.nn.Module, extra: dict | None = None) -> Path:
    path = tmp_path / "weights.pth"
    torch.save({**model.state_dict(), **(extra or {})}, path)
    return path


def test_weights_load_strictly(tmp_path):
    torch.manual_seed(1)
    source = build_model("resnet18", small=True)
    model = build_model("resnet18", small=True)
    assert load_weights(model, _saved(tmp_path, source)) == []
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    with pytest.raises(ModelError, match="unexpected keys: extra.weight"):
        load_weights(model, _saved(tmp_path, source, {"extra.weight": torch.ones(1)}), num_classes=10)
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ModelError, match="holds no state_dict"):
        load_weights(model, tmp_path / "list.pth")


def test_a_new_classifier_only_when_the_class_count_is_asked_for(tmp_path):
    path = _saved(tmp_path, build_model("resnet18", small=True, num_classes=1000))
    model = build_model("resnet18", small=True, num_classes=10)
    with pytest.raises(ModelError, match=r"shape mismatches: .*the file's classifier has 1000 classes: pass --num-cl"):
        load_weights(model, path)
    fresh = load_weights(model, path, num_classes=10)
    assert fresh and all(model.state_dict()[k].shape[0] == 10 for k in fresh)
    state = torch.load(path, weights_only=True)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items() if k not in fresh)


def test_cli_weights_with_a_mismatch_is_one_runtime_error(tmp_path, capsys, quick):
    path = _saved(tmp_path, build_model("resnet18", small=True, width=0.25))
    code, line = cli_error(capsys, "train", "--config", str(DEMO), "--output-dir", str(tmp_path / "out"),
                           "--small", "--weights", str(path), "--train-subset", "16")  # fmt: skip
    assert code == 1 and f"incompatible checkpoint {path}" in line and "shape mismatches" in line


# ---- model names ----------------------------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed here")
def test_timm_model_without_timm_names_the_install_command(tmp_path, capsys, quick):
    code, line = cli_error(capsys, "train", "--config", str(DEMO), "--model", "timm:resnet18",
                           "--output-dir", str(tmp_path))  # fmt: skip
    assert code == 2 and "needs the package 'timm'" in line and "pip install timm" in line


@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite_pytorch") is not None, reason="installed here")
def test_external_name_errors():
    with pytest.raises(ModelError, match="pip install efficientnet-lite-pytorch==0.1.0"):
        resolve_model("efficientnet-lite0", num_classes=10)
    with pytest.raises(ModelError, match="give the architecture after 'torchvision:'"):
        resolve_model("torchvision:")


# ---- generation report ------------------------------------------------------------------------------------------------
def test_generation_report_is_printed_saved_and_linked(tmp_path, quick):
    from nncf_bootstrapnas.cli.steps_model import report_generation
    from nncf_bootstrapnas.elasticity.report import GenerationReport

    report = GenerationReport("Net", ["width"], {"width": 0}, 1, {"max": 2_000_000, "min": 2_000_000},
                              warnings=["width requested but no variable: [reaches a model output]"])  # fmt: skip
    session = session_for(tmp_path)
    report_generation(session, argparse.Namespace(generation_report=lambda: report))
    files = session.finish()
    out = tmp_path / "out"
    assert json.loads((out / "generation_report.json").read_text())["variables"] == {"width": 0}
    assert (out / "generation_report.md").read_text().startswith("# Generation report: Net")
    assert "[generation_report.md](generation_report.md)" in files["markdown"].read_text()
    assert any("no variable" in note for note in session.report.notes)


# ---- slow: the whole pipeline on written data ---------------------------------------------------------------------------
TINY = {
    "model": "resnet18", "batch_size": 32, "epochs": 1,
    "bootstrapNAS": {
        "training": {
            "progressivity_of_elasticity": ["width", "depth"],
            "batchnorm_adaptation": {"num_bn_adaptation_samples": 32},
            "schedule": {"list_stage_descriptions": [{"train_dims": ["width", "depth"], "epochs": 1, "width_indicator": 2}]},
            "elasticity": {"available_elasticity_dims": ["width", "depth"], "width": {"min_width": 8, "width_multipliers": [1.0, 0.5]}},
            "train_steps": 2,
        },
        "search": {"num_evals": 3, "population": 3, "batchnorm_adaptation": {"num_bn_adaptation_samples": 32}},
    },
    "export": {"formats": ["openvino"], "int8": True, "num_calibration_samples": 16},
    "benchmark": {"time_budget_s": 0.2, "warmup_iters": 2},
}  # fmt: skip


def run_cli(tmp_path: Path, *flags: str) -> tuple[subprocess.CompletedProcess, Path]:
    config, out = tmp_path / "tiny.json", tmp_path / "out"
    config.write_text(json.dumps(TINY))
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "nncf_bootstrapnas.cli.main", "run", "--config", str(config), "--output-dir",
           str(out), "--small", "--no-progress", *flags]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500), out


def check_run(proc: subprocess.CompletedProcess, out: Path) -> dict:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert {s["name"]: s["status"] for s in report["stages"]}["train"] == "done"
    assert "generation: " in proc.stdout and (out / "generation_report.json").is_file()
    assert "(generation_report.md)" in (out / "report.md").read_text()
    return report


@pytest.mark.slow
def test_run_on_a_fashion_mnist_subset(tmp_path):
    data = write_random_fashion(tmp_path / "fmnist")
    report = check_run(*run_cli(tmp_path, "--dataset", "fashion-mnist", "--data", str(data), "--train-subset", "128"))
    assert report["dataset"].startswith("Fashion-MNIST: ") and "3x32x32" in report["dataset"]


@pytest.mark.slow
def test_run_on_an_image_folder(tmp_path):
    data = write_png_folder(tmp_path / "pngs")
    report = check_run(*run_cli(tmp_path, "--dataset", "imagefolder", "--data", str(data), "--image-size", "16"))
    assert report["model"]["spec"]["args"]["num_classes"] == 3 and "3x16x16" in report["dataset"]
