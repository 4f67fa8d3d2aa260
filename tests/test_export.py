"""Export to torch / ONNX / OpenVINO IR (FP32, INT8) with numerical checks; small models so the file runs in seconds."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nncf_bootstrapnas.config import ConfigError
from nncf_bootstrapnas.deployment import ExportMismatchError, describe_module, export, load_exported
from nncf_bootstrapnas.deployment.checks import Tolerance, compare


class ResidualCat(nn.Module):
    """Custom forward (residual add, torch.cat): not reconstructable from JSON, goes through torch.export."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.side = nn.Conv2d(8, 4, 1)
        self.head = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = torch.relu(y + self.block(y))
        y = torch.cat([y, self.side(y)], dim=1)
        return self.head(y.mean((2, 3)))


class BakedConstant(nn.Module):
    """Python float of a tensor: tracing bakes the example's value in, so other inputs disagree after export."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float(x.abs().max())


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, so eval-mode folding is actually exercised."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


def _conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(0.1), nn.Linear(8, 10),
    )  # fmt: skip


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(torch.cat([a, b], dim=1))
        return y, y.mean((2, 3))


CASES = {  # name: (factory, input shapes, reconstructable from architecture.json)
    "conv_bn_pool_linear": (_conv_net, [(1, 3, 16, 16)], True),
    "residual_cat": (ResidualCat, [(1, 3, 16, 16)], False),
    "conv_transpose": (
        lambda: nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.ConvTranspose2d(4, 2, 2, stride=2)
        ),
        [(2, 3, 8, 8)],
        True,
    ),
    "conv1d": (
        lambda: nn.Sequential(nn.Conv1d(4, 8, 5, padding=2), nn.GroupNorm(2, 8), nn.GELU(), nn.AvgPool1d(2)),
        [(1, 4, 32)],
        True,
    ),
    "two_inputs_two_outputs": (TwoInputs, [(1, 3, 8, 8), (1, 3, 8, 8)], False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_export_all_formats_checked_and_reloadable(name, tmp_path):
    make, shapes, reconstructable = CASES[name]
    torch.manual_seed(0)
    model = _randomise_bn(make()).train()
    x = tuple(torch.randn(s) for s in shapes)
    result = export(model, tmp_path, example_input=x, progress=False)
    assert model.training  # exported in eval mode, the caller's flag is restored
    model.eval()

    assert {"torch", "onnx", "openvino"} <= set(result.checks)
    for fmt, check in result.checks.items():
        assert check.max_abs_diff <= check.tolerance, fmt
        assert check.num_inputs >= 3, fmt  # example + random + another batch size
    assert result.input_shapes == [list(s) for s in shapes]
    assert all(result.dynamic_batch.values())
    saved = json.loads((tmp_path / "export.json").read_text())
    assert saved["checks"]["openvino"]["max_abs_diff"] == result.checks["openvino"].max_abs_diff
    assert (tmp_path / "onnx" / "model.onnx").is_file() and (tmp_path / "openvino" / "model.bin").is_file()

    state = torch.load(tmp_path / "torch" / "state_dict.pt", weights_only=True)
    assert set(state) == set(model.state_dict())
    assert describe_module(model)["reconstructable"] is reconstructable
    loaded = load_exported(tmp_path)
    assert (type(loaded) is type(model)) is reconstructable  # rebuilt nn tree vs torch.export program
    program = torch.export.load(str(tmp_path / "torch" / "model.pt2")).module()  # loadable without our code
    other = tuple(torch.randn(s[0] + 2, *s[1:]) for s in shapes)
    with torch.no_grad():
        for inp in (x, other):
            torch.testing.assert_close(loaded(*inp), model(*inp), rtol=0, atol=1e-6)
            torch.testing.assert_close(program(*inp), model(*inp), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "torch"])
def test_mismatch_raises_naming_format_diff_and_tolerance(fmt, tmp_path):
    with pytest.raises(ExportMismatchError, match=rf"^{fmt}.*max abs diff .* > tolerance") as info:
        export(BakedConstant(), tmp_path, formats=(fmt,), example_input=torch.randn(1, 4), progress=False)
    assert info.value.format == fmt and info.value.max_abs_diff > info.value.tolerance > 0
    assert json.loads((tmp_path / "export.json").read_text())["error"] == str(info.value)  # kept for debugging


def test_compare_uses_output_scale():
    ref = [[torch.full((2, 3), 1000.0).numpy()]]
    near = [[(torch.full((2, 3), 1000.0) + 0.05).numpy()]]  # 5e-5 relative: within 1e-4 x scale
    assert compare("openvino", "torch", ref, near, Tolerance(1e-4, 1e-4)).tolerance == pytest.approx(0.1)
    far = [[(torch.full((2, 3), 1000.0) + 0.5).numpy()]]
    with pytest.raises(ExportMismatchError, match="openvino"):
        compare("openvino", "torch", ref, far, Tolerance(1e-4, 1e-4))


def test_int8_tolerance_allows_rounding_ties_not_more():
    fp32 = [[torch.zeros(2, 4).numpy()]]
    fq = [[torch.full((2, 4), 0.1).numpy()]]  # quantization error 0.1 at output scale 0.1
    tie_flips = [[torch.full((2, 4), 0.2).numpy()]]  # IR off by the quantization error again: within 2x
    check = compare("openvino_int8", "torch fake-quantized", fq, tie_flips, Tolerance(1e-3, 5e-2, 2.0), fp32=fp32)
    assert check.tolerance == pytest.approx(0.2) and check.extra["quantization_error"] == pytest.approx(0.1)
    with pytest.raises(ExportMismatchError, match=r"openvino_int8 .* 2 x quantization error 0\.1"):
        compare(
            "openvino_int8",
            "torch fake-quantized",
            fq,
            [[torch.full((2, 4), 0.35).numpy()]],
            Tolerance(1e-3, 5e-2, 2.0),
            fp32=fp32,
        )


def _loader(labelled: bool, n: int = 16, batch_size: int = 4) -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(n, 3, 16, 16, generator=gen)
    dataset = TensorDataset(xs, torch.zeros(n, dtype=torch.long)) if labelled else xs
    return DataLoader(dataset, batch_size=batch_size)


@pytest.mark.parametrize("labelled", [True, False], ids=["x_y_batches", "bare_batches"])
def test_int8_from_calibration_loader(labelled, tmp_path):
    torch.manual_seed(0)
    # the bare-batch case also covers a bare nn.Sequential, which nncf.quantize cannot take without a wrapper
    model = _randomise_bn(ResidualCat() if labelled else _conv_net())
    loader = _loader(labelled)
    result = export(model, tmp_path, formats=(), int8=loader, num_calibration_samples=12, progress=False)
    assert result.int8["batch_format"] == ("(inputs, labels)" if labelled else "inputs")
    assert result.int8["subset_size_batches"] == 3  # 12 samples in batches of 4
    assert result.int8["fake_quantize_ops"] > 0
    check = result.checks["openvino_int8"]
    assert check.reference.startswith("torch fake-quantized") and check.max_abs_diff <= check.tolerance
    assert result.checks["openvino_int8_vs_fp32"].max_abs_diff > 0  # really quantized
    assert result.input_shapes == [[1, 3, 16, 16]]  # example taken from the loader's first batch
    assert (tmp_path / "openvino_int8" / "model.xml").is_file()


def test_int8_ir_with_wrong_quantization_ranges_raises(tmp_path, monkeypatch):
    import openvino.opset13 as ops

    from nncf_bootstrapnas.deployment import exporter

    convert = exporter.convert_to_openvino

    def shrink_fake_quantize_ranges(*args, **kwargs):  # a converter bug: activation ranges 4x too small
        model = convert(*args, **kwargs)
        for op in model.get_ops():
            if op.get_type_name() == "FakeQuantize":
                for port in (1, 2, 3, 4):
                    data = op.input_value(port).get_node().get_data()
                    op.input(port).replace_source_output(ops.constant(data * 0.25).output(0))
        return model

    monkeypatch.setattr(exporter, "convert_to_openvino", shrink_fake_quantize_ranges)
    with pytest.raises(ExportMismatchError, match=r"^openvino_int8 .*torch fake-quantized \(nncf.quantize\)"):
        export(_conv_net(), tmp_path, formats=(), int8=_loader(False, n=8), num_calibration_samples=8, progress=False)


def test_int8_from_quantization_aware_model(tmp_path):
    import nncf
    import nncf.torch

    torch.manual_seed(0)
    model = _randomise_bn(_conv_net())

    class Net(nn.Module):  # nncf.quantize cannot take a bare nn.Sequential
        def __init__(self) -> None:
            super().__init__()
            self.body = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    data = nncf.Dataset(_loader(True), lambda b: b[0])
    qat = nncf.quantize(Net().eval(), data, subset_size=2)
    x = torch.randn(1, 3, 16, 16)
    result = export(qat, tmp_path, formats=("torch",), int8=True, example_input=x, progress=False)
    assert result.int8["mode"].startswith("quantization-aware") and result.int8["num_quantizers"] > 0
    assert result.checks["openvino_int8"].reference == "torch fake-quantized (QAT model)"
    assert result.checks["openvino_int8"].max_abs_diff <= result.checks["openvino_int8"].tolerance
    # FP32 formats are the float twin: quantizers removed, weights unchanged.
    assert not any("quantizer" in k.lower() or "nncf" in k for k in torch.load(tmp_path / "torch" / "state_dict.pt"))
    # QAT state restorable by users who have the model code.
    config = torch.load(tmp_path / "torch" / "nncf_config.pt", weights_only=False)  # holds NNCF enums
    restored = nncf.torch.load_from_config(Net().eval(), config)
    restored.load_state_dict(torch.load(tmp_path / "torch" / "qat_state_dict.pt", weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(restored(x), qat(x))


def test_supernet_is_exported_as_extracted_subnet(tmp_path):
    class FakeSupernet:
        example_input = (torch.randn(1, 3, 16, 16),)

        def __init__(self) -> None:
            self.seen = []

        def extract(self, cfg):
            self.seen.append(cfg)
            return _conv_net()

    sn = FakeSupernet()
    cfg = {"width": {"0": 8}}
    result = export(sn, tmp_path, config=cfg, formats=("openvino",), progress=False)
    assert sn.seen == [cfg] and result.config == cfg and result.input_shapes == [[1, 3, 16, 16]]


def test_argument_errors(tmp_path):
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(ConfigError, match=r"^export.formats\[0\]: 'tflite' is not one of torch, onnx, openvino"):
        export(_conv_net(), tmp_path, formats=("tflite",), example_input=x)
    with pytest.raises(ValueError, match="export.formats is empty and no INT8 IR is asked for"):
        export(_conv_net(), tmp_path, formats=(), example_input=x)
    with pytest.raises(ValueError, match="int8=True.*no NNCF quantizers"):
        export(_conv_net(), tmp_path, formats=(), int8=True, example_input=x)
    with pytest.raises(ValueError, match="not a super-network"):
        export(_conv_net(), tmp_path, config={"width": {}}, example_input=x)
    with pytest.raises(ValueError, match="no example input"):
        export(_conv_net(), tmp_path)
    with pytest.raises(TypeError, match="int8="):
        export(_conv_net(), tmp_path, int8=3, example_input=x)


def test_ir_accuracy_counts_like_the_torch_top1(tmp_path):
    """The deployed model's top-1 counts the same labels as evaluation.top1_accuracy (IGNORE_INDEX skipped)."""
    from nncf_bootstrapnas.deployment import ir_accuracy
    from nncf_bootstrapnas.evaluation import top1_accuracy

    model = _randomise_bn(_conv_net())
    x = torch.randn(12, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    y[:4] = (y[:4] + 1) % 10  # four wrong labels
    y[4] = -100  # one ignored label
    loader = DataLoader(TensorDataset(x, y), batch_size=5)
    result = export(model, tmp_path, formats=("openvino",), example_input=x[:1], progress=False)
    acc, n = ir_accuracy(result.paths["openvino"], loader)
    assert n == 11 and acc == pytest.approx(100.0 * 7 / 11) == top1_accuracy(model, loader)
