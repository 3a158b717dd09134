"""`python -m infra.bench.layers`: the worker's cold import from the built layers, with
the bytecode they ship and without it (as they were built before), side by side.

The layers are built for this machine (x86_64) by infra/scripts/build_layer.py as
`make build` builds them for arm64 (infra/scripts/local_layers.py, cached in .local/).
Each round, in turn for each variant, a fresh CPython 3.13 interpreter that sees only
the standard library, functions/worker and the layers (-I -S), and writes no bytecode
(-B, as Lambda's read-only /opt), imports the `hello` path (`import app`) or the `chat`
path (`app` and what the first `chat` imports); median of BENCH_COLD_RUNS rounds.
Writes .local/bench-layers.json.
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
PATHS = {"hello": ("app",), "chat": ("app", *AGENT_MODULES)}
_IMPORT = """
import importlib, json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
started = time.perf_counter()
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
print(time.perf_counter() - started)
"""
# What the worker's template gives it at init, as far as an import reads it.
_ENV = {"LANG": "C.UTF-8", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "mailroom"}


def cold_imports(python: str, variants: dict[str, list[str]]) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {v: {p: [] for p in PATHS} for v in variants}
    env = {"PATH": os.environ["PATH"], **_ENV}
    for _ in range(COLD_RUNS):
        for variant, path in variants.items():
            for name, modules in PATHS.items():
                command = [python, "-I", "-S", "-B", "-c", _IMPORT, json.dumps(path), json.dumps(modules)]
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"{variant} {name}: import failed\n{done.stderr[-2000:]}")
                times[variant][name].append(float(done.stdout.strip().splitlines()[-1]))
    return times


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
    print(f"\nWorker cold import from the built layers (x86_64 build; median of {COLD_RUNS}, ms)")
    print(f"  {'layers':<16}{'hello':>10}{'chat':>10}{'chat/hello':>12}")
    for variant, row in ms.items():
        print(f"  {variant:<16}{row['hello']:>10.0f}{row['chat']:>10.0f}{row['chat'] / row['hello']:>11.2f}x")
    with_, without = ms["bytecode"], ms["sources only"]
    print(
        f"  bytecode saves {without['hello'] - with_['hello']:.0f} ms on hello, "
        f"{without['chat'] - with_['chat']:.0f} ms on chat"
    )
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULT_PATH.write_text(json.dumps({"runs": COLD_RUNS, "import_ms": as_ms(times), "median_ms": ms}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
