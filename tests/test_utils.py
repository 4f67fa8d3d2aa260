"""utils: the one atomic writer, the one JSON sanitiser, the one progress helper."""

from __future__ import annotations

import enum
import json
import math
from pathlib import Path

import numpy as np
import pytest

from nncf_bootstrapnas.config import FrozenDict
from nncf_bootstrapnas.utils.io import atomic_write, dumps_json, json_safe, write_csv, write_json
from nncf_bootstrapnas.utils.progress import NO_PROGRESS, progress, progress_bar


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "result.json"
    write_json(path, {"a": 1})

    def torn(f):
        f.write(b'{"a": ')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        atomic_write(path, torn)
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_json_safe_gives_strict_plain_json():
    data = {
        "nan": float("nan"),
        "inf": -math.inf,
        "np": np.float32(1.5),
        "int": np.int64(3),
        "arr": np.arange(3),
        "tuple": (1, 2),
        "set": {3, 1},
        "path": Path("/x"),
        "frozen": FrozenDict({"k": (1, 2)}),
        7: "key",
    }
    assert json_safe(data) == {
        "nan": None, "inf": None, "np": 1.5, "int": 3, "arr": [0, 1, 2], "tuple": [1, 2], "set": [1, 3],
        "path": "/x", "frozen": {"k": [1, 2]}, "7": "key",
    }  # fmt: skip
    json.loads(dumps_json(data), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))

    class Scheme(str, enum.Enum):
        SYMMETRIC = "symmetric"

    safe = json_safe({"mode": Scheme.SYMMETRIC, "flag": np.bool_(True)})
    assert safe == {"mode": "symmetric", "flag": True} and type(safe["mode"]) is str  # weights_only-loadable
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        json_safe({"x": object()})
    assert json_safe({"x": object()}, default=lambda o: "obj") == {"x": "obj"}


def test_write_csv(tmp_path):
    path = write_csv(tmp_path / "t.csv", [["a", "b"], [1, "x,y"]])
    assert path.read_text().splitlines() == ["a,b", '1,"x,y"']


def test_disabled_progress_is_a_no_op_with_the_same_methods():
    with progress(False) as bars:
        assert bars is NO_PROGRESS
        bar = bars.add("epochs", total=3)
        bar.advance(info="x")
        bar.update(completed=2, description="y")
        bar.log("hidden")
        with bar.suspended():
            pass
        bar.remove()


def test_progress_bar_counts_and_logs(capsys):
    with progress_bar("work", 3) as bar:
        bar.advance(info="one")
        bar.advance(2, info="three")
        bar.log("a message")
        with bar.suspended():
            pass
    out = capsys.readouterr().out
    assert "a message" in out and "work" in out and "3/3" in out
