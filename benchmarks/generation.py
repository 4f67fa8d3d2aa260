"""Generation cost: time to build each super-network and forward overhead at the maximum config.

Overhead = supernet forward (max config) / original forward, torch eager, CPU, batch 32, measured side by side in one
process (interleaved repeats, median). Target: <= 1.10x; generation of any model <= 10 s.

    .venv/bin/python benchmarks/generation.py            # reference models from nncf_bootstrapnas/models
    .venv-zoo/bin/python benchmarks/generation.py --zoo  # torchvision architectures
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nncf_bootstrapnas.elasticity import create_supernet

OPTIONS = {"width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}}


def timed(fn, x, repeats: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - t)
    return out


def measure(name: str, model: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict:
    model.eval()
    t = time.perf_counter()
    sn = create_supernet(model, OPTIONS, example_input=x[:1]).eval()
    gen_s = time.perf_counter() - t
    with torch.no_grad():
        for _ in range(2):
            model(x), sn(x)
        base, elastic = [], []
        for _ in range(repeats):  # interleaved so drift affects both alike
            base += timed(model, x, 1)
            elastic += timed(sn, x, 1)
    b, e = statistics.median(base), statistics.median(elastic)
    return {"model": name, "generation_s": gen_s, "orig_ms": b * 1e3, "supernet_ms": e * 1e3, "ratio": e / b,
            "space": repr(sn.search_space)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", action="store_true", help="torchvision models (needs .venv-zoo)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("models", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    if args.zoo:
        import torchvision

        names = args.models or ["resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "densenet121",
                                "shufflenet_v2_x1_0", "convnext_tiny", "vit_b_16", "swin_t"]  # fmt: skip
        for name in names:
            torch.manual_seed(0)
            model = getattr(torchvision.models, name)(weights=None)
            batch = max(1, args.batch // 8)  # 224x224: keep the run short
            rows.append(measure(name, model, torch.randn(batch, 3, 224, 224), max(3, args.repeats // 3)))
            print(rows[-1], flush=True)
    else:
        from nncf_bootstrapnas.models import MODELS, build_model, example_input

        for name in args.models or sorted(MODELS):
            torch.manual_seed(0)
            rows.append(measure(name, build_model(name), example_input(name, args.batch), args.repeats))
            print(rows[-1], flush=True)
    print("\n| model | generation (s) | original (ms) | supernet max (ms) | ratio |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['generation_s']:.2f} | {r['orig_ms']:.1f} | {r['supernet_ms']:.1f} | {r['ratio']:.3f} |"
        )


if __name__ == "__main__":
    main()
