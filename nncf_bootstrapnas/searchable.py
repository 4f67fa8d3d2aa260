"""What ``search``, the generator and the quality report need from a super-network, whoever built it.

They never look inside a super-network: they read integer-coded choices (``search_space``), make one subnet the one
that runs (``activate``) and call what the asked objectives measure (``macs``, ``params``, ``extract``). This
package's ``SuperNetwork`` is one implementation; a thin adapter around any other weight-sharing model (Once-for-All,
a hand-written dynamic net) is another. Each consumer checks its needs up front with :func:`require`, so a missing
member is one error naming it and who needs it, not an ``AttributeError`` deep inside a search. See
docs/any_supernet.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from nncf_bootstrapnas.elasticity.search_space import SearchSpace

SubnetConfig = dict[str, dict[str, int]]
DOC = "docs/any_supernet.md"

# Every member a consumer may need, with the signature and meaning the error message shows.
MEMBERS: dict[str, str] = {
    "search_space": "search_space: a SearchSpace of integer-coded choices (SearchSpace([Variable(dim, key, choices)]))",
    "activate": "activate(config): make the subnet config (None = maximum) the one forward() runs",
    "active_config": "active_config: the active subnet config (re-activated after every measurement)",
    "macs": "macs(config) -> int: MACs of one sample through the subnet",
    "params": "params(config) -> int: parameters of the subnet",
    "extract": "extract(config=None) -> nn.Module: the active (or given) subnet as a stand-alone module",
    "forward": "an nn.Module whose forward() runs the active subnet (BN recalibration, top-1, REINFORCE)",
}
# What consumers read from ``search_space``: exactly the API of ``elasticity.SearchSpace``.
SPACE_MEMBERS = (
    "variables",
    "size",
    "lower_bounds",
    "upper_bounds",
    "decode",
    "encode",
    "validate",
    "sample",
    "maximum",
    "minimum",
    "to_json",
)
CORE = ("search_space", "activate", "active_config")
COSTS = ("macs", "params")


class SupernetProtocolError(TypeError):
    """A super-network (or its search space) lacks a member the called function needs."""


@runtime_checkable
class SearchableSupernet(Protocol):
    """The core every consumer uses. ``macs``/``params``/``extract`` and being an ``nn.Module`` are needed only by
    what uses them (objectives list theirs in ``Objective.needs``); :data:`MEMBERS` says what each one means."""

    search_space: SearchSpace

    @property
    def active_config(self) -> SubnetConfig: ...

    def activate(self, config: Mapping[str, Mapping[str, int]] | None) -> None: ...


def _has(obj: Any, member: str) -> bool:
    if member == "forward":
        from torch import nn

        return isinstance(obj, nn.Module)
    if member in ("search_space", "active_config"):
        return hasattr(obj, member)
    return callable(getattr(obj, member, None))


def missing_members(obj: Any, needs: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Member -> the reasons (``needs`` keys) that need it, for every member ``obj`` lacks."""
    missing: dict[str, list[str]] = {}
    for reason, members in needs.items():
        for member in members:
            if not _has(obj, member):
                missing.setdefault(member, []).append(reason)
    return missing


def require(obj: Any, caller: str, needs: Mapping[str, Iterable[str]], space: Any = None) -> None:
    """Raise one ``SupernetProtocolError`` naming every member ``obj`` lacks and who needs it; check the space too.

    ``needs`` maps a reason (``"search()"``, ``"objective 'macs'"``) to the member names of :data:`MEMBERS`;
    ``space`` is the caller's explicit search space (else ``obj.search_space`` is checked when needed).
    """
    needs = {reason: tuple(members) for reason, members in needs.items()}
    missing = missing_members(obj, needs)
    if missing:
        lines = "; ".join(f"{MEMBERS.get(m, m)} (needed by {', '.join(why)})" for m, why in missing.items())
        raise SupernetProtocolError(
            f"{caller}: {type(obj).__name__} does not provide what is asked of it: {lines}. "
            f"See the SearchableSupernet protocol in {DOC}"
        )
    if space is not None:
        require_space(space, caller)
    elif any("search_space" in members for members in needs.values()):
        require_space(obj.search_space, caller)


def require_space(space: Any, caller: str) -> None:
    """A search space must offer the ``SearchSpace`` API; the simplest way is to be one."""
    lacking = [m for m in SPACE_MEMBERS if not hasattr(space, m)]
    if lacking:
        raise SupernetProtocolError(
            f"{caller}: the search space ({type(space).__name__}) lacks {', '.join(lacking)}; build it as "
            f"nncf_bootstrapnas.SearchSpace([Variable(dim, key, choices), ...]) (see {DOC})"
        )


__all__ = [
    "CORE",
    "COSTS",
    "MEMBERS",
    "SPACE_MEMBERS",
    "SearchableSupernet",
    "SupernetProtocolError",
    "missing_members",
    "require",
    "require_space",
]
