"""The pruned layers still hold everything the functions run.

`make build` builds the layers for Lambda's arm64 with infra/scripts/build_layer.py,
which deletes what it judges never runs (botocore's other services, zstandard's CFFI
backend, Google's other discovery documents, stubs). This machine cannot run arm64
code, so the test builds the same layers, from the same locked requirements with the
same script and pruning, from manylinux x86_64 wheels, and imports from them in a clean
interpreter (no site-packages, only the layers and the standard library):

- every module any Mailroom file imports, at the top or inside a function;
- the worker's init as for a SnapStart snapshot (the whole agent path, the tools' schemas);
- a botocore client of each kept service, Gmail's discovery document, zstandard at work;
- one agent turn end to end: the graph built with the real ChatOpenAI and the Gmail
  tools, answering over HTTP through the OpenAI emulator (served by this process);
- that no module of the layers is compiled from source on import (Lambda's /opt is
  read-only, so the layers ship CPython 3.13 bytecode; see build_layer.compile_bytecode),
  after every file's time has changed as SAM's zip and Lambda's unzip change it, and
  that no inspect.getsource call on a library lacks its source (KEEP_SOURCE).

What it proves: no pruning rule removes a module or data file that Mailroom's code
reaches, for the same package versions. What it does not: that the arm64 binaries load
(the wheels are built by the same projects from the same sources; when a `make build`
is present, the test also checks that both builds hold the same files but for the
platform tags of compiled modules, and the same kind of bytecode).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.emulators.openai import OpenAIEmulator
from infra.local.template import ROOT
from infra.scripts.build_layer import BOTOCORE_SERVICES, KEEP_SOURCE
from infra.scripts.local_layers import NoLayerPython, built_layers, layer_python

SOURCES = [ROOT / "layers/common/mailroom", *(ROOT / "functions").glob("*/app.py")]

_PROBE = """
import importlib, importlib.util, importlib.machinery as machinery, inspect, json, os, sys
root, layers, modules = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path[:0] = [os.path.join(root, "functions/worker"), *layers]
failed, compiled, no_source = {}, [], []
def in_layers(path):
    return any(str(path).startswith(layer) for layer in layers)
# What the import system compiles from source because no valid bytecode was found.
to_code = machinery.SourceFileLoader.source_to_code
def source_to_code(self, data, path, **kwargs):
    if in_layers(path):
        compiled.append(str(path))
    return to_code(self, data, path, **kwargs)
machinery.SourceFileLoader.source_to_code = source_to_code
# Libraries that read their own source at run time, and find none (most catch it).
findsource = inspect.findsource
def finding_source(obj):
    try:
        return findsource(obj)
    except OSError:
        module = inspect.getmodule(obj)
        if in_layers(getattr(module, "__file__", "")):
            no_source.append(f"{getattr(module, '__name__', '?')}: {getattr(obj, '__qualname__', obj)!r}")
        raise
inspect.findsource = finding_source
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
answers = []
def agent_turn():
    import time
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI
    from langgraph.checkpoint.memory import InMemorySaver
    from mailroom.agent.context import AgentContext
    from mailroom.agent.graph import build_graph, final_answer
    from mailroom.agent.tools import gmail_tools
    base_url, key = json.loads(sys.argv[5])
    model = ChatOpenAI(base_url=base_url, api_key=key, model="gpt-4o-mini", max_retries=0)
    graph = build_graph(model, gmail_tools(), InMemorySaver())
    context = AgentContext(email="probe@example.com", deadline=time.monotonic() + 60)
    config = {"configurable": {"thread_id": "probe"}}
    result = graph.invoke({"messages": [HumanMessage("what can you do?")]}, config, context=context)
    answers.append(final_answer(result["messages"]))
attempt("agent turn", agent_turn)
outside = sorted({m.__name__.partition(".")[0] for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and ".venv" in m.__file__})
loaders = {}
for module in list(sys.modules.values()):
    if in_layers(getattr(module, "__file__", None) or ""):
        kind = type(getattr(module.__spec__, "loader", None)).__name__
        loaders[kind] = loaders.get(kind, 0) + 1
print(json.dumps({"failed": failed, "outside_layers": outside, "modules": len(sys.modules), "answers": answers,
                  "compiled_from_source": compiled, "no_source": no_source, "loaders": loaders}))
"""

# The first run builds both layers from PyPI's wheels (a minute or more on a busy machine).
pytestmark = pytest.mark.timeout(900)


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


@pytest.fixture(scope="module")
def layers() -> list[Path]:
    try:
        return built_layers()
    except NoLayerPython as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def model() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


def test_every_module_mailroom_imports_loads_from_the_pruned_layers_alone(layers, model):
    modules = imported_modules()
    assert {"langchain_openai", "googleapiclient.discovery", "aws_lambda_powertools.utilities.batch"} <= set(modules)
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_TRACE_DISABLED": "true"}
    env |= dict.fromkeys(("QUEUE_URL", "TOKENS_TABLE", "CHECKPOINTS_TABLE", "TOKENS_KEY_ARN"), "placeholder")
    arguments = [str(ROOT), json.dumps([str(p) for p in layers]), json.dumps(modules)]
    arguments += [json.dumps(sorted(BOTOCORE_SERVICES)), json.dumps([model.base_url, model.api_key])]
    # The layers' bytecode is CPython 3.13's, as Lambda's runtime: run it on a 3.13.
    # -B: like Lambda's read-only /opt, nothing compiled at import is kept.
    completed = subprocess.run(
        [layer_python(), "-I", "-S", "-B", "-c", _PROBE, *arguments],
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
    # The agent answered over HTTP, with the Gmail tools' schemas sent to the model.
    assert report["answers"] and "search and summarise your email" in report["answers"][0]
    assert {t["function"]["name"] for t in model.requests[-1]["tools"]} >= {"search_emails", "read_email"}
    # Every module came from bytecode shipped in the layers, none compiled at import...
    assert report["compiled_from_source"] == []
    assert report["loaders"].get("SourcelessFileLoader", 0) > 1000, report["loaders"]
    # ...and nothing looked for a source it no longer has.
    assert report["no_source"] == []


def test_the_pruned_layers_leave_out_what_they_should(layers):
    common, agent = layers
    assert {d.name for d in (common / "botocore/data").iterdir() if d.is_dir()} == BOTOCORE_SERVICES
    assert [p.name for p in (common / "googleapiclient/discovery_cache/documents").iterdir()] == ["gmail.v1.json"]
    assert not list((agent / "zstandard").glob("_cffi*"))


def _layer_magic() -> str:
    """The bytecode format of the CPython the layers are built with (one per 3.x)."""
    command = [layer_python(), "-c", "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _assert_unchecked_bytecode(layer: Path, magic: str) -> None:
    pycs = list(layer.rglob("*.pyc"))
    assert len(pycs) > 500, layer
    for pyc in pycs:
        header = pyc.read_bytes()[:8]
        # PEP 552: flags 0b01 = hash-based, source not checked.
        assert (header[:4].hex(), int.from_bytes(header[4:8], "little")) == (magic, 1), pyc


def test_the_layers_ship_unchecked_bytecode_for_313_and_sources_only_where_read(layers):
    magic = _layer_magic()
    for layer in layers:
        _assert_unchecked_bytecode(layer, magic)
        for source in layer.rglob("*.py"):
            top = source.relative_to(layer).parts[0].removesuffix(".py")
            assert top in KEEP_SOURCE, f"{source}: a source outside KEEP_SOURCE"
    for keep in KEEP_SOURCE:
        layer = next(layer for layer in layers if (layer / keep).is_dir())
        for source in (layer / keep).rglob("*.py"):
            cached = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
            assert cached.is_file(), f"{source} has no bytecode"


def _files(layer: Path) -> set[str]:
    """A layer's files, compiled modules named without their platform tag."""
    tag = re.compile(r"\.cpython-313-[a-z0-9_]+-linux-gnu\.so$")
    files = (f.relative_to(layer) for f in layer.rglob("*") if f.is_file())
    return {tag.sub(".so", str(f)) for f in files}


def test_the_arm64_build_holds_the_same_files_as_the_tested_one(layers):
    built = ROOT / ".aws-sam/build"
    if not (built / "SharedLayer").is_dir():
        pytest.skip("no `make build` here to compare with")
    magic = _layer_magic()
    for tested, logical_id in zip(layers, ("SharedLayer", "AgentLayer"), strict=True):
        arm64 = built / logical_id / "python"
        # `sam build --cached` misses a change of build_layer.py: `make clean build`.
        assert _files(arm64) ^ _files(tested) == set(), f"{logical_id} (a stale build?)"
        _assert_unchecked_bytecode(arm64, magic)


_CATALOGS = """
import importlib, json, os, sys
root, layers = sys.argv[1], json.loads(sys.argv[2])
sys.path[:0] = [os.path.join(root, "functions/worker"), *layers]
from mailroom.agent.preload import AGENT_MODULES, preload_agent
unused = ("openai.types.graders", "openai.types.responses.response_input_item", "langsmith.types.custom_charts_section",
          "langchain_openai.llms", "langgraph_sdk.client")
importlib.import_module("app")
for name in AGENT_MODULES:
    importlib.import_module(name)
on_demand = [name for name in unused if name in sys.modules]
# A turn on demand: the API types it needs load as it goes (a call, then a stream).
import time
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from mailroom.agent.context import AgentContext
from mailroom.agent.graph import build_graph, final_answer
from mailroom.agent.tools import gmail_tools
base_url, key = json.loads(sys.argv[3])
model = ChatOpenAI(base_url=base_url, api_key=key, model="gpt-4o-mini", max_retries=0)
graph = build_graph(model, gmail_tools(), InMemorySaver())
context = AgentContext(email="probe@example.com", deadline=time.monotonic() + 60)
config = {"configurable": {"thread_id": "on-demand"}}
question = {"messages": [HumanMessage("what can you do?")]}
answers = [final_answer(graph.invoke(question, config, context=context)["messages"])]
streamed = graph.stream(question, config, context=context, stream_mode="messages")
answers.append("".join(str(chunk.content) for chunk, _ in streamed))
preload_agent()
snapshot = [name for name in unused if name in sys.modules]
print(json.dumps({"on_demand": on_demand, "answers": answers, "snapshot": snapshot}))
"""


def test_a_first_chat_imports_only_the_api_types_it_uses_and_a_snapshot_all_of_them(layers, model):
    # build_layer.LAZY_REEXPORTS: OpenAI's and LangSmith's type catalogs, langchain_openai
    # and langgraph_sdk load each name on first use; SnapStart's init (preload_agent)
    # still loads every one.
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "AWS_DEFAULT_REGION": "us-east-1"}
    command = [layer_python(), "-I", "-S", "-B", "-c", _CATALOGS, str(ROOT), json.dumps([str(p) for p in layers])]
    command.append(json.dumps([model.base_url, model.api_key]))
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["on_demand"] == []
    assert len(report["answers"]) == 2
    assert all("search and summarise your email" in answer for answer in report["answers"]), report["answers"]
    assert model.requests[-1]["stream"] is True
    assert len(report["snapshot"]) == 5
