"""`python -m infra.bench.layers`: the worker's cold import from the built layers, with
the bytecode they ship and without it (as they were built before), side by side.

The layers are built for this machine (x86_64) by infra/scripts/build_layer.py as
`make build` builds them for arm64 (infra/scripts/local_layers.py, cached in .local/).
Each round, in turn for each variant, a fresh CPython 3.13 interpreter that sees only
the standard library, functions/worker and the layers (-I -S), and writes no bytecode
(-B, as Lambda's read-only /opt), imports the `hello` path (`import app`) or the `chat`
path (`app` and what the first `chat` imports); median of BENCH_COLD_RUNS rounds. With
the bytecode, also "chat, model ready": the `chat` imports and what the first turn does
before its first request to the model (ChatOpenAI, the graph with the Gmail tools bound,
the client's chat completions), which imports the API types the layer build left to
first use (build_layer.LAZY_REEXPORTS). Ratios to `hello` are the median of each round's
ratio (a shared machine's load moves both alike). Writes .local/bench-layers.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from infra.local.template import ROOT
from infra.scripts.local_layers import built_layers, layer_python
from mailroom.agent.preload import AGENT_MODULES

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "5"))
RESULT_PATH = ROOT / ".local/bench-layers.json"
MODEL_READY = "chat, model ready"
PATHS = {"hello": ("app",), "chat": ("app", *AGENT_MODULES), MODEL_READY: ("app", *AGENT_MODULES)}
_IMPORT = """
import importlib, json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
started = time.perf_counter()
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
if sys.argv[3] == "model ready":
    from langchain_openai import ChatOpenAI
    from mailroom.agent.graph import build_graph
    from mailroom.agent.tools import gmail_tools
    model = ChatOpenAI(model="gpt-4o-mini", api_key="bench", base_url="http://127.0.0.1:9/v1", max_retries=0)
    build_graph(model, gmail_tools(), None)
    model.root_client.chat.completions
print(time.perf_counter() - started)
"""
# What the worker's template gives it at init, as far as an import reads it.
_ENV = {"LANG": "C.UTF-8", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "mailroom"}


def cold_imports(python: str, variants: dict[str, list[str]]) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {v: {p: [] for p in PATHS if p != MODEL_READY} for v in variants}
    times["bytecode"][MODEL_READY] = []
    env = {"PATH": os.environ["PATH"], **_ENV}
    for _ in range(COLD_RUNS):
        for variant, path in variants.items():
            for name, modules in PATHS.items():
                if name == MODEL_READY and variant != "bytecode":
                    continue
                setup = "model ready" if name == MODEL_READY else ""
                command = [python, "-I", "-S", "-B", "-c", _IMPORT, json.dumps(path), json.dumps(modules), setup]
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"{variant} {name}: import failed\n{done.stderr[-2000:]}")
                times[variant][name].append(float(done.stdout.strip().splitlines()[-1]))
    return times


def paired_ratio(times: list[float], hello: list[float]) -> float:
    """The median of each round's time over that round's `hello`."""
    return statistics.median(t / h for t, h in zip(times, hello, strict=True))


def as_ms(times: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, list[float]]]:
    return {v: {p: [round(s * 1000, 1) for s in t] for p, t in paths.items()} for v, paths in times.items()}


def main() -> int:
    print("Building the layers for this machine, with and without bytecode (cached in .local/)...", flush=True)
    worker = str(ROOT / "functions/worker")
    variants = {
        "bytecode": [worker, *map(str, built_layers(bytecode=True))],
        "sources only": [worker, *map(str, built_layers(bytecode=False))],
    }
    times = cold_imports(layer_python(), variants)
    ms = {v: {p: statistics.median(t) * 1000 for p, t in paths.items()} for v, paths in times.items()}
    ratios = {v: {p: round(paired_ratio(t, paths["hello"]), 2) for p, t in paths.items()} for v, paths in times.items()}
    print(f"\nWorker cold import from the built layers (x86_64 build; median of {COLD_RUNS}, ms; x hello)")
    print(f"  {'layers':<16}{'hello':>10}{'chat':>18}{MODEL_READY:>26}")
    for variant, row in ms.items():
        ready = f"{row[MODEL_READY]:.0f} {ratios[variant][MODEL_READY]:.2f}x" if MODEL_READY in row else "-"
        chat = f"{row['chat']:.0f} {ratios[variant]['chat']:.2f}x"
        print(f"  {variant:<16}{row['hello']:>10.0f}{chat:>18}{ready:>26}")
    with_, without = ms["bytecode"], ms["sources only"]
    print(
        f"  bytecode saves {without['hello'] - with_['hello']:.0f} ms on hello, "
        f"{without['chat'] - with_['chat']:.0f} ms on chat"
    )
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    results = {"runs": COLD_RUNS, "import_ms": as_ms(times), "median_ms": ms, "ratio_to_hello": ratios}
    RESULT_PATH.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
