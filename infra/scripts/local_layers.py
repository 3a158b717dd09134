"""The Lambda layers built for this machine (x86_64) with infra/scripts/build_layer.py,
for tests/build and `make bench`: the same locked requirements, pruning and bytecode as
`make build`'s arm64 layers, from manylinux x86_64 wheels, cached in .local/.

`bytecode=False` builds them as they were before they shipped bytecode (sources only),
for the benchmark's before/after of a cold import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from infra.local.template import ROOT

LAYERS = ("common", "agent")
CACHE = ROOT / ".local" / "layers-x86_64"
BUILD_SCRIPT = ROOT / "infra/scripts/build_layer.py"


class NoLayerPython(RuntimeError):
    """No Python 3.13 with pip to build the layers with."""


def layer_python() -> str:
    """A Python 3.13 with pip, as `make build` uses (LAYER_PYTHON from the Makefile)."""
    candidates = [os.environ.get("LAYER_PYTHON", ""), shutil.which("python3.13") or ""]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-m", "pip", "--version"], capture_output=True, check=False)
        if probe.returncode == 0 and b"python 3.13" in probe.stdout:
            return candidate
    raise NoLayerPython("building the layers needs a Python 3.13 with pip (set LAYER_PYTHON, as the Makefile does)")


def built_layers(*, bytecode: bool = True) -> list[Path]:
    """The layers' site folders (shared, agent), rebuilt whenever a requirement, the
    build script or the mailroom package changes. Every file is then given a new time,
    as SAM's zip and Lambda's unzip do, so bytecode that checked them would be stale."""
    digest = hashlib.sha256(b"bytecode" if bytecode else b"sources")
    inputs = [BUILD_SCRIPT, *(ROOT / f"layers/{name}/requirements.txt" for name in LAYERS)]
    inputs += sorted((ROOT / "layers/common/mailroom").rglob("*.py"))
    for path in inputs:
        digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    variant = CACHE / ("bytecode" if bytecode else "sources")
    target = variant / digest.hexdigest()[:16]
    if not (target / "done").exists():
        shutil.rmtree(variant, ignore_errors=True)
        python = layer_python()
        for name in LAYERS:
            command = [python, str(BUILD_SCRIPT), str(ROOT / "layers" / name), str(target / name)]
            command += ["--architecture", "x86_64", *([] if bytecode else ["--sources-only"])]
            subprocess.run(command, check=True, capture_output=True)
        (target / "done").write_text("")
    layers = [target / name / "python" for name in LAYERS]
    later = time.time() + 3600
    for file in (f for layer in layers for f in layer.rglob("*") if f.is_file()):
        os.utime(file, (later, later))
    return layers
