"""Parallel evaluation: a process pool and two torch.distributed (gloo) ranks produce the single-process rows."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from nncf_bootstrapnas.subnet_search import MeasureSpec, resolve_objective, search
from nncf_bootstrapnas.subnet_search.evaluator import measure

try:
    from test_search_fakes import FakeSupernet, fake_validate
except ImportError:  # tests/ imported as a package
    from tests.test_search_fakes import FakeSupernet, fake_validate

TESTS = Path(__file__).resolve().parent
SETTINGS = {"population": 8, "num_evals": 40, "seed": 5}

RANK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    import torch.distributed as dist
    from test_search_fakes import FakeSupernet, fake_validate
    from nncf_bootstrapnas.subnet_search import search

    calls = []

    def validate(model, loader):
        calls.append(1)
        return fake_validate(model, loader)

    dist.init_process_group("gloo")  # env://: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    res = search(FakeSupernet(), {"bootstrapNAS": {"search": json.loads(sys.argv[3])}}, validate, [None],
                 algorithm="NSGA2", progress=True, checkpoint_dir=sys.argv[2] + "/ckpt")
    out = {"rows": [[r["index"], r["x"], r["values"]] for r in res.rows], "measured_here": len(calls),
           "world_size": res.stats["world_size"]}
    with open(f"{sys.argv[2]}/rank{dist.get_rank()}.json", "w") as f:
        json.dump(out, f)
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(result) -> list[list]:
    return [[r["index"], r["x"], r["values"]] for r in result.rows]


def test_pool_and_distributed_evaluation_match_a_single_process(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    port = str(_free_port())
    ranks = []
    for rank in range(2):  # launched first so that their start-up overlaps the in-process runs below
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "RANK": str(rank), "WORLD_SIZE": "2",
               "OMP_NUM_THREADS": "1"}  # fmt: skip
        cmd = [sys.executable, str(script), str(TESTS), str(tmp_path), json.dumps(SETTINGS)]
        ranks.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))

    config = {"bootstrapNAS": {"search": SETTINGS}}
    single = search(FakeSupernet(), config, fake_validate, [None], algorithm="NSGA2", progress=False)
    # "fork" only to keep the test fast on a busy machine; the default "spawn" re-imports torch in every worker.
    # What spawn adds is pickling the MeasureSpec, checked below, and fresh interpreters, which the ranks are.
    pooled = search(FakeSupernet(), config, fake_validate, [None], algorithm="NSGA2", progress=False, num_workers=2,
                    mp_context="fork")  # fmt: skip
    assert _rows(pooled) == _rows(single)
    assert pooled.stats["num_workers"] == 2 and pooled.stats["evaluations"] == SETTINGS["num_evals"]

    outputs = []
    for proc in ranks:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        outputs.append(out)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["world_size"] == 2
    assert r0["rows"] == r1["rows"] == json.loads(json.dumps(_rows(single)))  # every rank holds the merged rows
    assert r0["measured_here"] + r1["measured_here"] == SETTINGS["num_evals"]  # each subnet measured once overall
    assert abs(r0["measured_here"] - r1["measured_here"]) <= 8  # split round-robin, batch by batch
    assert (tmp_path / "ckpt" / "search_state.json").exists()  # written by rank 0
    assert "search NSGA2" in outputs[0] and "search NSGA2" not in outputs[1]  # only rank 0 shows progress


def test_measure_spec_survives_pickling_for_spawned_workers():
    sn = FakeSupernet()
    spec = MeasureSpec(sn, sn.search_space, [resolve_objective("accuracy"), resolve_objective("macs")], fake_validate,
                       [None])  # fmt: skip
    spec.shared["subnets"] = {"big": object()}  # per-process memo is not shipped
    clone = pickle.loads(pickle.dumps(spec))
    assert clone.shared == {}
    x = sn.search_space.upper_bounds
    assert measure(clone, x)[0] == measure(spec, x)[0]
