"""Self-check of a new super-network: what the analysis promised, run.

1. Verification traces: the super-network is traced again at its minimum subnet, in eval and in train mode, and at
   one random subnet. Every op must run and give the shape the analysis expects (active widths on
   the channel dimensions, everything else unchanged). The first op that fails or differs (a hard-coded channel count
   in a reshape, say) freezes exactly the variables it touches, with that op as the reason; then again.
2. Where step 1 could not compare (control flow changed with the widths), the minimum subnet runs a forward in eval
   and in train mode; a variable whose smallest choice still breaks it is removed (one log line each) instead of failing later in training or search.

The model's buffers (batch-norm statistics) and the random state are restored after every train-mode run.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ..graph.channels import GraphState
from ..graph.layout import active_length, layout_groups
from ..graph.tracer import Op, trace, train_inputs

logger = logging.getLogger("nncf_bootstrapnas")


def _reference_ops(supernet: Any, state: GraphState, cfg: dict) -> list[Op]:
    """The analysed ops that run at ``cfg``: those of skipped blocks do not."""
    graph = state.graph
    ranges = []
    for block in supernet._skipped_blocks(cfg):
        calls = [graph.calls.get(p) for p in block.paths]
        if all(c is not None for c in calls):
            ranges.append((calls[0].start, calls[-1].end))
    return [op for op in graph.ops if not any(a <= op.index < b for a, b in ranges)]


def _divergence(supernet: Any, cfg: dict, state: GraphState) -> tuple[str, tuple[Op, str, bool] | None]:
    """``("ok", None)``, ``("diverged", None)`` (control flow changed: nothing to compare) or ``("problem", (analysed
    op, what happened, only spatial dims differ))`` at the first op that does not behave as analysed."""
    supernet.activate(cfg)
    width_of = supernet._width_of(supernet.active_config)
    training = state.graph.training
    args, kwargs = train_inputs(supernet.example_input, supernet.example_kwargs, state.graph.batch_doubled)
    buffers = {id(b): b.detach().clone() for b in supernet.buffers()} if training else {}
    try:
        got = trace(supernet, args, kwargs, training=training, catch=True, count_macs=False)
    finally:
        _restore(supernet, buffers)
    ref = _reference_ops(supernet, state, cfg)
    last_active = None
    for i, op in enumerate(got.ops):
        if i >= len(ref) or ref[i].name != op.name:
            return "diverged", None
        if not op.outputs and got.error is not None:
            return "problem", (ref[i], f"fails at a smaller width: {_short(got.error)}", False)
        if ref[i].index not in state.activation_ops:
            continue
        last_active = ref[i]
        for vo, vr in zip(op.outputs, ref[i].outputs):
            ann = state.ann.get(vr, {})
            full = state.graph.shape(vr)
            expected = tuple(active_length(ann[d], width_of) if d in ann else full[d] for d in range(len(full)))
            actual = got.shape(vo)
            if actual != expected and _inside_dynamic_kernel(supernet, op, ann, actual, expected):
                continue
            if actual != expected:
                spatial = all(d not in ann for d in range(len(full)) if d < len(actual) and actual[d] != expected[d])
                return "problem", (ref[i], f"gives shape {list(actual)} instead of {list(expected)} at a smaller width",
                                   spatial)  # fmt: skip
    if got.error is not None:
        if last_active is None:
            return "diverged", None
        return "problem", (last_active, f"fails at a smaller width: {_short(got.error)}", False)
    return ("ok" if len(got.ops) == len(ref) else "diverged"), None


def _inside_dynamic_kernel(supernet: Any, op: Op, ann: dict, actual: tuple, expected: tuple) -> bool:
    """A convolution whose padding follows its kernel (computed in its forward) pads a smaller kernel less: spatial
    sizes inside its call change by design (the module's output was verified when its kernel plan was made)."""
    if len(actual) != len(expected) or any(actual[d] != expected[d] for d in ann):
        return False
    scopes = {p.removeprefix("model.") for p in op.scope}
    return any(path in scopes and not plan.embed for path, plan in supernet.kernel_plans.items())


def _restore(supernet: Any, buffers: dict[int, torch.Tensor]) -> None:
    with torch.no_grad():
        for b in supernet.buffers():
            if id(b) in buffers:
                b.copy_(buffers[id(b)])


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 160 else text[:157] + "..."


def _culprits(supernet: Any, op: Op, state: GraphState, spatial: bool) -> list[str]:
    """The variables an op touches: its layer's kernel for a spatial difference, else the width groups it reads."""
    ch = supernet.analysis.channels
    if spatial:
        layer = next((u.module for u in ch.layers if u.op == op.index and u.graph == state_index(supernet, state)), "")
        if layer in supernet.kernel_plans:
            return [f"kernel/{layer}"]
    names = []
    layouts = [lay for vid in op.inputs + op.outputs for lay in state.ann.get(vid, {}).values()]
    keys = {k for vid in op.inputs + op.outputs for ks in state.porig.get(vid, {}).values() for k in ks}
    keys |= {(p, d) for p in op.params for d in range(len(state.graph.param_shapes.get(p, ())))}
    layouts += [ch.params[k] for k in keys if k in ch.params]
    for layout in layouts:
        for g in layout_groups(layout):
            group = supernet._root_to_group.get(ch.root(g))
            if group is not None and f"width/{group.name}" not in names:
                names.append(f"width/{group.name}")
    return names


def state_index(supernet: Any, state: GraphState) -> int:
    return supernet.analysis.channels.states.index(state)


def verify_traces(supernet: Any) -> bool:
    """Step 1: freeze what a smaller width, kernel or depth breaks, op by op. ``True`` when every check compared
    cleanly (then the minimum subnet has run in every traced mode)."""
    states = supernet.analysis.channels.states
    for _ in range(len(supernet.search_space.variables) + 1):
        space = supernet.search_space
        if not space.variables:
            return True
        checks = [(space.minimum(), state) for state in states]
        checks.append((space.sample(np.random.default_rng(0)), states[0]))
        results = [(_divergence(supernet, cfg, state), state) for cfg, state in checks]
        supernet.activate(None)
        problem = next(((found, state) for (status, found), state in results if status == "problem"), None)
        if problem is None:
            return all(status == "ok" for (status, _), _ in results)
        (op, what, spatial), state = problem
        names = [n for n in _culprits(supernet, op, state, spatial) if n in {v.name for v in space.variables}]
        if not names:
            return False  # nothing to blame here: the run check decides
        reason = f"{what} ({op.where}: {op.name})"
        for name in names:
            logger.info("%s is not elastic: %s", name, reason)
        supernet.drop_variables({n: reason for n in names})
    return False


def _runs(supernet: Any, config: dict, training: bool) -> Exception | None:
    train_graph = supernet.analysis.train_graph
    doubled = training and train_graph is not None and train_graph.batch_doubled
    args, kwargs = train_inputs(supernet.example_input, supernet.example_kwargs, doubled)
    buffers = {id(b): b.detach().clone() for b in supernet.buffers()} if training else {}
    try:
        supernet.activate(config)
        supernet.train(training)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            supernet(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure means the analysis misjudged something
        return exc
    finally:
        _restore(supernet, buffers)
    return None


def run_minimum(supernet: Any) -> None:
    """Step 2: the minimum subnet runs in eval and train mode; else remove the variables that break it."""
    modes = (False, True) if supernet.analysis.train_graph is not None else (False,)
    for training in modes:
        if _runs(supernet, supernet.search_space.minimum(), training) is None:
            continue
        bad = {}
        for var in supernet.search_space.variables:
            error = _runs(supernet, {var.dim: {var.key: var.minimum}}, training)
            if error is not None:
                mode = "train" if training else "eval"
                logger.warning("%s is not elastic: its smallest choice fails at run time in %s mode (%s)",
                               var.name, mode, error)  # fmt: skip
                bad[var.name] = f"its smallest choice fails at run time in {mode} mode ({_short(error)})"
        supernet.activate(None)
        if bad:
            supernet.drop_variables(bad)
        error = _runs(supernet, supernet.search_space.minimum(), training)
        if error is not None:
            raise RuntimeError(
                f"create_supernet: the minimum subnet still fails after freezing {len(bad)} variables: {error}"
            )


def self_check(supernet: Any) -> None:
    was_training = supernet.training
    try:
        if not verify_traces(supernet):
            run_minimum(supernet)
    finally:
        supernet.activate(None)
        supernet.train(was_training)
