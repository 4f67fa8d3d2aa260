"""Checkpoint/resume: a search killed mid-way and resumed with the same seed ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nncf_bootstrapnas.subnet_search import search
from nncf_bootstrapnas.subnet_search.checkpoint import STATE_FILE, load_checkpoint

try:
    from test_search_fakes import FakeSupernet, fake_validate
except ImportError:  # tests/ imported as a package
    from tests.test_search_fakes import FakeSupernet, fake_validate

TESTS = Path(__file__).resolve().parent
SETTINGS = {
    "NSGA2": {"population": 8, "num_evals": 48},
    "LINAS": {
        "population": 8,
        "num_evals": 30,
        "linas": {
            "initial_evals": 10,
            "candidates_per_round": 5,
            "inner_population": 12,
            "inner_generations": 5,
            "predictors": ["ridge", "svr"],
        },
    },  # fmt: skip
    "random": {"population": 6, "num_evals": 30},
}
KILL_AFTER = 3

SCRIPT = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    import json
    from test_search_fakes import FakeSupernet, fake_validate
    from nncf_bootstrapnas.subnet_search import search

    algorithm, ckpt, kill_after = sys.argv[2], sys.argv[3], int(sys.argv[4])
    settings = json.loads(sys.argv[5])

    def die(info):
        if info["step"] == kill_after:
            os._exit(17)  # no cleanup, no final checkpoint: like a SIGKILL right after step k

    search(FakeSupernet(), {"bootstrapNAS": {"search": settings}}, fake_validate, [None], algorithm=algorithm,
           checkpoint_dir=ckpt, callback=die, progress=False)
    """
)


def json_rows(result) -> list[dict]:
    """The rows as written by ``to_json``, without the wall-clock time (the only thing allowed to differ)."""
    return [{k: v for k, v in r.items() if k != "time_s"} for r in json.loads(result.to_json())["rows"]]


class CountingValidate:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model, loader):
        self.calls += 1
        return fake_validate(model, loader)


def run(algorithm: str, checkpoint_dir=None, resume=False, validate=fake_validate, **overrides):
    settings = {**SETTINGS[algorithm], **overrides}
    return search(FakeSupernet(), {"bootstrapNAS": {"search": settings}}, validate, [None], algorithm=algorithm,
                  checkpoint_dir=checkpoint_dir, resume=resume, progress=False)  # fmt: skip


def check_resume(algorithm: str, checkpoint_dir: Path) -> None:
    state, blob = load_checkpoint(checkpoint_dir)
    measured = len(state["evaluator"]["records"])
    assert state["step"] == KILL_AFTER and 2 < measured < SETTINGS[algorithm]["num_evals"]
    assert (blob is not None) == (algorithm == "NSGA2")  # pymoo state is pickled; LINAS state is plain JSON
    validate = CountingValidate()
    resumed = run(algorithm, checkpoint_dir, resume=True, validate=validate)
    uninterrupted = run(algorithm)
    assert json_rows(resumed) == json_rows(uninterrupted)
    assert len(resumed.rows) == SETTINGS[algorithm]["num_evals"]
    assert validate.calls == SETTINGS[algorithm]["num_evals"] - measured  # checkpointed rows are not re-measured
    assert resumed.best["index"] == uninterrupted.best["index"]
    assert resumed.hv_history == pytest.approx(uninterrupted.hv_history)
    assert resumed.algorithm_stats == uninterrupted.algorithm_stats
    # A restarted (not resumed) algorithm would replay its first generations from the cache and reach the same rows:
    # only the restored algorithm state makes the same number of steps and cache hits.
    assert resumed.stats["steps"] == uninterrupted.stats["steps"]
    assert resumed.stats["cache_hits"] == uninterrupted.stats["cache_hits"]


def test_killed_search_resumes_to_the_uninterrupted_result(tmp_path):
    """NSGA2 in a subprocess that dies with os._exit right after its k-th checkpoint (pymoo state is pickled)."""
    script = tmp_path / "killed_search.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, str(script), str(TESTS), "NSGA2", str(tmp_path / "ckpt"), str(KILL_AFTER),
           json.dumps(SETTINGS["NSGA2"])]  # fmt: skip
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 17, proc.stdout + proc.stderr
    assert not [p.name for p in (tmp_path / "ckpt").iterdir() if p.name.startswith(".")]  # no torn temp files
    check_resume("NSGA2", tmp_path / "ckpt")


class Crash(Exception):
    pass


@pytest.mark.parametrize("algorithm", ["LINAS", "random"])
def test_crashed_search_resumes_to_the_uninterrupted_result(algorithm, tmp_path):
    """In-process crash after step k: only the files on disk survive; the resume rebuilds every object."""

    def crash(info):
        if info["step"] == KILL_AFTER:
            raise Crash

    settings = {"bootstrapNAS": {"search": SETTINGS[algorithm]}}
    with pytest.raises(Crash):
        search(FakeSupernet(), settings, fake_validate, [None], algorithm=algorithm, checkpoint_dir=tmp_path,
               callback=crash, progress=False)  # fmt: skip
    check_resume(algorithm, tmp_path)


def test_resume_extends_a_finished_search_and_refuses_other_settings(tmp_path):
    first = run("random", tmp_path, num_evals=20)
    assert json.loads((tmp_path / STATE_FILE).read_text())["step"] >= 1
    validate = CountingValidate()
    again = run("random", tmp_path, resume=True, validate=validate, num_evals=20)
    assert validate.calls == 0 and json_rows(again) == json_rows(first)
    longer = run("random", tmp_path, resume=True, validate=validate, num_evals=30)
    assert validate.calls == 10 and json_rows(longer)[:20] == json_rows(first)
    assert json_rows(longer) == json_rows(run("random", num_evals=30))  # same draws as one 30-evaluation run
    with pytest.raises(ValueError, match=r"settings changed \{'seed': \(0, 1\)\}"):
        run("random", tmp_path, resume=True, seed=1)
    with pytest.raises(ValueError, match="its algorithm 'random' differs from this search's 'NSGA2'"):
        run("NSGA2", tmp_path, resume=True)


def test_resume_without_checkpoint_starts_fresh_and_keeps_one_blob(tmp_path):
    res = run("NSGA2", tmp_path / "new", resume=True, num_evals=24)
    assert len(res.rows) == 24
    blobs = sorted(p.name for p in (tmp_path / "new").glob("*.pkl"))
    state = json.loads((tmp_path / "new" / STATE_FILE).read_text())
    assert blobs == [state["blob"]["file"]]  # older generations' blobs are removed
