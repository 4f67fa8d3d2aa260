"""Skippable blocks: the user's block objects with their class swapped to the elastic subclass, which returns its
tensor argument when skipped, whatever else the parent passes (``block(x, drop_connect_rate=0.2)``).

A skipped block runs nothing. In the extracted model a skipped block becomes ``nn.Identity`` when its parent calls it
as ``block(x)``, else ``SkippedBlock``, which accepts any arguments.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .views import first_tensor, make_skippable, materialize

__all__ = ["SkippedBlock", "make_skippable", "strip_skippable", "skipped_stand_in"]


class SkippedBlock(nn.Module):
    """Stands in for a skipped block in an extracted subnet: returns the tensor its parent passed."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return first_tensor(args, kwargs)


def skipped_stand_in(plain_call: bool) -> nn.Module:
    return nn.Identity() if plain_call else SkippedBlock()


def strip_skippable(module: nn.Module) -> nn.Module:
    """The plain block again (used on the extracted copy)."""
    materialize(module, {})
    return module
