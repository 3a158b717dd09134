"""The pruned layers still hold everything the functions run.

`make build` builds the layers for Lambda's arm64 with infra/scripts/build_layer.py,
which deletes what it judges never runs (botocore's other services, zstandard's CFFI
backend, Google's other discovery documents, stubs). This machine cannot run arm64
code, so the test builds the same layers, from the same locked requirements with the
same script and pruning, from manylinux x86_64 wheels, and imports from them in a clean
interpreter (no site-packages, only the layers and the standard library):

- every module any Mailroom file imports, at the top or inside a function;
- the worker's init as for a SnapStart snapshot (the whole agent path, the tools' schemas);
- a botocore client of each kept service, Gmail's discovery document, zstandard at work.

What it proves: no pruning rule removes a module or data file that Mailroom's code
reaches, for the same package versions. What it does not: that the arm64 binaries load
(the wheels are built by the same projects from the same sources; when a `make build`
is present, the test also checks that both builds hold the same files but for the
platform tags of compiled modules).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.template import ROOT
from infra.scripts.build_layer import BOTOCORE_SERVICES

LAYERS = ("common", "agent")
CACHE = ROOT / ".local" / "layers-x86_64"
SOURCES = [ROOT / "layers/common/mailroom", *(ROOT / "functions").glob("*/app.py")]

_PROBE = """
import importlib, importlib.util, json, os, sys
root, layers, modules = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path[:0] = [os.path.join(root, "functions/worker"), *layers]
failed = {}
def attempt(name, action):
    try:
        action()
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"[:300]
os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
attempt("worker app (snapshot init)", lambda: importlib.import_module("app"))
for function in ("ingress", "oauth_callback"):
    def load(function=function):
        path = os.path.join(root, f"functions/{function}/app.py")
        spec = importlib.util.spec_from_file_location(f"{function}_app", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    attempt(f"{function} app", load)
for name in modules:
    attempt(name, lambda name=name: importlib.import_module(name))
import botocore.session
for service in json.loads(sys.argv[4]):
    session = botocore.session.get_session()
    attempt(f"client {service}", lambda s=service: session.create_client(s, region_name="us-east-1"))
def gmail_document():
    from googleapiclient.discovery_cache import get_static_doc
    assert get_static_doc("gmail", "v1"), "no Gmail discovery document"
attempt("Gmail discovery document", gmail_document)
def zstd():
    import zstandard
    data = b"mailroom " * 100
    assert zstandard.ZstdDecompressor().decompress(zstandard.ZstdCompressor().compress(data)) == data
attempt("zstandard round trip", zstd)
outside = sorted({m.__name__.partition(".")[0] for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and ".venv" in m.__file__})
print(json.dumps({"failed": failed, "outside_layers": outside, "modules": len(sys.modules)}))
"""


def imported_modules() -> list[str]:
    """Every absolute import in Mailroom's code, but for type-checking-only blocks and
    imports guarded by `except ImportError` (present only on Lambda)."""
    names: set[str] = set()
    files = [f for source in SOURCES for f in ([source] if source.is_file() else source.rglob("*.py"))]
    for file in files:
        tree = ast.parse(file.read_text())
        skipped: set[int] = set()
        for node in ast.walk(tree):
            guarded: list[ast.stmt] = []
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                guarded = node.body
            if isinstance(node, ast.Try) and any("ImportError" in ast.unparse(h.type or node) for h in node.handlers):
                guarded = node.body
            skipped |= {id(n) for child in guarded for n in ast.walk(child)}
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return sorted(names - {"app", "__future__"})


def layer_python() -> str:
    """A Python 3.13 with pip, as `make build` uses (LAYER_PYTHON from the Makefile)."""
    candidates = [os.environ.get("LAYER_PYTHON", ""), shutil.which("python3.13") or ""]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-m", "pip", "--version"], capture_output=True, check=False)
        if probe.returncode == 0 and b"python 3.13" in probe.stdout:
            return candidate
    pytest.fail("building the layers needs a Python 3.13 with pip (set LAYER_PYTHON, as the Makefile does)")


def built_layers() -> list[Path]:
    """The x86_64 layers, rebuilt whenever a requirement, the build script or the
    mailroom package changes."""
    digest = hashlib.sha256()
    inputs = [ROOT / "infra/scripts/build_layer.py", *(ROOT / f"layers/{name}/requirements.txt" for name in LAYERS)]
    inputs += sorted((ROOT / "layers/common/mailroom").rglob("*.py"))
    for path in inputs:
        digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    target = CACHE / digest.hexdigest()[:16]
    if not (target / "done").exists():
        shutil.rmtree(CACHE, ignore_errors=True)
        python = layer_python()
        for name in LAYERS:
            script, source = ROOT / "infra/scripts/build_layer.py", ROOT / "layers" / name
            command = [python, str(script), str(source), str(target / name), "--architecture", "x86_64"]
            subprocess.run(command, check=True, capture_output=True)
        (target / "done").write_text("")
    return [target / name / "python" for name in LAYERS]


@pytest.fixture(scope="module")
def layers() -> list[Path]:
    return built_layers()


def test_every_module_mailroom_imports_loads_from_the_pruned_layers_alone(layers):
    modules = imported_modules()
    assert {"langchain_openai", "googleapiclient.discovery", "aws_lambda_powertools.utilities.batch"} <= set(modules)
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_TRACE_DISABLED": "true"}
    env |= dict.fromkeys(("QUEUE_URL", "TOKENS_TABLE", "CHECKPOINTS_TABLE", "TOKENS_KEY_ARN"), "placeholder")
    arguments = [str(ROOT), json.dumps([str(p) for p in layers]), json.dumps(modules)]
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", _PROBE, *arguments, json.dumps(sorted(BOTOCORE_SERVICES))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["outside_layers"] == []  # nothing came from the development environment


def test_the_pruned_layers_leave_out_what_they_should(layers):
    common, agent = layers
    assert {d.name for d in (common / "botocore/data").iterdir() if d.is_dir()} == BOTOCORE_SERVICES
    assert [p.name for p in (common / "googleapiclient/discovery_cache/documents").iterdir()] == ["gmail.v1.json"]
    assert not list((agent / "zstandard").glob("_cffi*"))


def _files(layer: Path) -> set[str]:
    """A layer's files, compiled modules named without their platform tag."""
    tag = re.compile(r"\.cpython-313-[a-z0-9_]+-linux-gnu\.so$")
    files = (f.relative_to(layer) for f in layer.rglob("*") if f.is_file())
    return {tag.sub(".so", str(f)) for f in files if "__pycache__" not in f.parts}


def test_the_arm64_build_holds_the_same_files_as_the_tested_one(layers):
    built = ROOT / ".aws-sam/build"
    if not (built / "SharedLayer").is_dir():
        pytest.skip("no `make build` here to compare with")
    for tested, logical_id in zip(layers, ("SharedLayer", "AgentLayer"), strict=True):
        arm64 = built / logical_id / "python"
        assert _files(arm64) ^ _files(tested) == set(), logical_id
