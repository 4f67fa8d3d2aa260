"""Top-1 accuracy of a deployed OpenVINO model: what a deployed subnet is judged by (the torch one is
``evaluation.top1_accuracy``; both count the same labels and skip ``IGNORE_INDEX``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from nncf_bootstrapnas.evaluation.measure import IGNORE_INDEX, split_batch


def ir_accuracy(xml: str | Path, loader: Iterable[Any], device: str = "CPU") -> tuple[float, int]:
    """Top-1 accuracy (%) of an OpenVINO IR over ``loader`` and the number of labelled targets counted.

    IRs with a static batch dimension are fed one sample at a time; dense outputs count every labelled position.
    """
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(xml))
    static_batch = model.input(0).get_partial_shape()[0].is_static
    compiled = core.compile_model(model, device)
    output = compiled.output(0)
    correct = total = 0
    for batch in loader:
        images, targets = split_batch(batch)
        if targets is None:
            raise ValueError("accuracy needs labelled batches (inputs, targets)")
        x, y = images.numpy(), targets.numpy()
        chunks = [x[i : i + 1] for i in range(len(x))] if static_batch else [x]
        logits = np.concatenate([compiled([c])[output] for c in chunks], axis=0)
        valid = y != IGNORE_INDEX
        correct += int(((logits.argmax(axis=1) == y) & valid).sum())
        total += int(valid.sum())
    if total == 0:
        raise ValueError("the validation loader yielded no labelled samples")
    return 100.0 * correct / total, total


__all__ = ["ir_accuracy"]
