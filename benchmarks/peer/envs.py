"""The two virtual environments and the worker subprocesses that run in them.

The NNCF 2.18 venv is built from the package registry when missing (torch first, then NNCF with the same pins so
pip cannot move torch; tensorboard because NNCF 2.18's training loop crashes without it). Nothing of NNCF is copied
into this repository: it is installed and called.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TORCH_PINS = ("torch==2.8.0", "torchvision==0.23.0")
PEER_PINS = ("nncf==2.18.0", *TORCH_PINS, "tensorboard")
PEER_NNCF_VERSION = "2.18.0"
STAMP = ".installed"
# Installed distributions' versions, read from their metadata (fast: nothing is imported).
PROBE = (
    "import json\n"
    "from importlib import metadata\n"
    "out = {}\n"
    "for name in ('torch', 'torchvision', 'nncf', 'nncf_bootstrapnas', 'tensorboard', 'pymoo'):\n"
    "    try:\n"
    "        out[name] = metadata.version(name)\n"
    "    except metadata.PackageNotFoundError:\n"
    "        out[name] = None\n"
    "print(json.dumps(out))\n"
)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def probe(venv: Path, timeout_s: float = 60) -> dict[str, Any] | str:
    """Versions of the packages in ``venv``, or why they cannot be read."""
    python = venv_python(venv)
    if not python.exists():
        return f"no Python at {python}"
    try:
        done = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} did not run: {exc}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"{python} failed: {lines[-1] if lines else done.returncode}"
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"{python} printed no versions: {done.stdout[-200:]!r}"


def peer_problem(versions: dict[str, Any] | str) -> str | None:
    """Why a probed venv cannot serve as the NNCF 2.18 side (None: it can)."""
    if isinstance(versions, str):
        return versions
    if versions.get("nncf") != PEER_NNCF_VERSION:
        return f"nncf is {versions.get('nncf')}, need {PEER_NNCF_VERSION}"
    if not str(versions.get("torch", "")).startswith("2.8."):
        return f"torch is {versions.get('torch')}, NNCF 2.18 needs 2.8"
    if versions.get("tensorboard") is None:
        return "tensorboard is missing (NNCF 2.18's training loop crashes without it)"
    return None


def ours_problem(versions: dict[str, Any] | str) -> str | None:
    """Why a probed venv cannot serve as our side (None: it can)."""
    if isinstance(versions, str):
        return versions
    for name in ("torch", "torchvision", "nncf_bootstrapnas"):
        if versions.get(name) is None:
            return f"{name} is not installed (torch 2.8 + torchvision 0.23 and `pip install -e .`: make .venv-zoo)"
    return None


def install_commands(venv: Path, index_url: str | None = None) -> list[list[str]]:
    """pip commands that build the NNCF 2.18 venv: torch first, then NNCF with the same pins."""
    pip = [str(venv_python(venv)), "-m", "pip", "install", "-q"]
    index = ["--extra-index-url", index_url] if index_url else []
    return [[*pip, *index, *TORCH_PINS], [*pip, *index, *PEER_PINS]]


def ensure_peer_venv(venv: Path, log: Path, index_url: str | None = None, create: bool = True) -> dict[str, Any]:
    """The NNCF 2.18 venv's versions; creates it when missing (minutes, downloads torch); raises if unusable."""
    versions = probe(venv)
    problem = peer_problem(versions)
    if problem is None:
        return versions  # type: ignore[return-value]
    if not create or (venv.exists() and not (venv / STAMP).exists() and venv_python(venv).exists()):
        raise SystemExit(f"error: --peer-venv {venv}: {problem}" + ("" if create else " (and --no-install)"))
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        commands = [[sys.executable, "-m", "venv", str(venv)], *install_commands(venv, index_url)]
        for command in commands:
            print(f"$ {' '.join(command)}", file=f, flush=True)
            if subprocess.run(command, stdout=f, stderr=subprocess.STDOUT).returncode != 0:
                raise SystemExit(f"error: building {venv} failed at `{' '.join(command)}`; see {log}")
    (venv / STAMP).touch()
    versions = probe(venv)
    problem = peer_problem(versions)
    if problem is not None:
        raise SystemExit(f"error: {venv} was built but is unusable: {problem}; see {log}")
    return versions  # type: ignore[return-value]


def run_worker(venv: Path, script: Path, task: str, spec: dict[str, Any], work: Path, log: Path, bar: Any,
               env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run ``script task`` in ``venv`` (cwd ``work``), stream its output to ``log`` and its ``@progress`` lines to
    ``bar``; the worker's result, or ``{"error": ...}`` if it wrote none."""
    work.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    spec_path, result_path = work / f"{task}_spec.json", work / f"{task}_result.json"
    spec_path.write_text(json.dumps({**spec, "work": str(work)}, indent=1))
    result_path.unlink(missing_ok=True)
    threads = str(spec.get("threads", 1))
    full_env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1",
                **(env or {})}  # fmt: skip
    command = [str(venv_python(venv)), str(script), task, str(spec_path), str(result_path)]
    last = ""
    with log.open("w") as f, subprocess.Popen(command, cwd=work, env=full_env, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            f.flush()  # the log is what a user tails while a worker runs for minutes
            if line.startswith("@progress "):
                bar.update(info=line[len("@progress ") :].strip())
            elif line.strip():
                last = line.strip()
        proc.wait()
    if result_path.is_file():
        return json.loads(result_path.read_text())
    return {"error": f"worker exited with code {proc.returncode} without a result: {last[:300]}", "log": str(log)}
