"""`python -m infra.bench`: every benchmark, each in its own interpreter (the ingress,
then the worker), so that neither measures what the other imported; then the sizes of
the last `make build`, and every figure against its target, side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.local.template import ROOT
from infra.scripts.package_sizes import BUILD, WORKER_BUDGET_BYTES, function_sizes, print_sizes

BENCHES = (
    "infra.bench.ingress",
    "infra.bench.worker",
    "infra.bench.layers",
    "infra.bench.search",
    "infra.bench.agent_surface",
)
RESULTS = {
    "ingress": ROOT / ".local/bench-ingress.json",
    "worker": ROOT / ".local/bench-worker.json",
    "layers": ROOT / ".local/bench-layers.json",
    "search": ROOT / ".local/bench-search.json",
}


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def targets() -> list[tuple[str, str, str, bool | None]]:
    """(what, target, measured, met) for each figure of issue 12 this run produced."""
    rows: list[tuple[str, str, str, bool | None]] = []
    ingress, worker = load(RESULTS["ingress"]), load(RESULTS["worker"])
    if ingress:
        total = ingress["cold_total_median_ms"]
        ratio_bare, ratio_bolt = total["ingress"] / total["bare"], total["ingress"] / total["bolt"]
        rows.append(("ingress cold start to first ack vs bare", "<= 1.15x", f"{ratio_bare:.2f}x", ratio_bare <= 1.15))
        rows.append(("ingress cold start to first ack vs Bolt", "< 1.00x", f"{ratio_bolt:.2f}x", ratio_bolt < 1))
    if worker:
        cold = worker["cold"]
        ratio = median(cold["import_only_ms"]["chat"]) / median(cold["import_only_ms"]["hello"])
        # The development environment's packages, not the layers Lambda runs (below).
        rows.append(("chat cold import vs hello, from .venv", "-", f"{ratio:.2f}x", None))
        firsts = cold["first_invocation_ms"]
        on_demand, restored = median(firsts["chat"]["total"]), median(firsts["chat_snapshot"]["total"])
        rows.append(
            ("first chat after a snapshot vs on demand", "imports gone", f"{restored:.0f} vs {on_demand:.0f} ms", None)
        )
        loaded = cold["hello_loads_agent_libraries"]
        rows.append(("agent libraries loaded by hello", "none", "some" if loaded else "none", not loaded))
        per_turn = worker["aws_calls"]["dynamodb_per_turn_after_the_first"]
        writes = str(per_turn["writes"])
        rows.append(
            (
                "DynamoDB writes per agent turn (reads)",
                "<= 4",
                f"{writes} ({per_turn['reads']})",
                max(int(n) for n in writes.split("-")) <= 4,
            )
        )
        stored = {k.split("_")[1]: v["total_bytes"] / 1024 for k, v in worker["checkpoints"].items()}
        growth = max(stored.values()) / min(stored.values())
        shown = " / ".join(f"{v:.0f}" for v in stored.values())
        rows.append((f"KB per conversation after {' / '.join(stored)} turns", "flat", shown, growth < 1.5))
    layers = load(RESULTS["layers"])
    if layers:
        built = layers["median_ms"]
        if "ratio_to_hello" in layers:
            ratios = layers["ratio_to_hello"]["bytecode"]
            chat, ready = ratios["chat"], ratios["chat, model ready"]
            rows.append(("chat cold import vs hello, built layers", "<= 2.50x", f"{chat:.2f}x", chat <= 2.5))
            rows.append(("... and the first turn's setup (model ready)", "-", f"{ready:.2f}x", None))
        for path in ("hello", "chat"):
            shown = f"{built['bytecode'][path]:.0f} vs {built['sources only'][path]:.0f} ms"
            faster = built["bytecode"][path] < built["sources only"][path]
            rows.append((f"{path} import from the layers: bytecode vs none", "faster", shown, faster))
    search = load(RESULTS["search"])
    if search:
        for setting, row in search.items():
            before, after = row["before_one_get_per_result"], row["after_one_batch"]
            rows.append(
                (
                    f"search_emails Gmail requests, ms ({setting})",
                    "1 batch",
                    f"{before['http_requests']}->{after['http_requests']}, "
                    f"{before['median_ms']:.0f}->{after['median_ms']:.0f}",
                    after["http_requests"] <= 2,
                )
            )
    worker_size = next((s for s in function_sizes() if s.logical_id == "WorkerFunction"), None)
    if worker_size:
        size = f"{worker_size.total / 2**20:.1f} MB"
        rows.append(("worker package unzipped", "<= 100 MB", size, worker_size.total <= WORKER_BUDGET_BYTES))
    return rows


def main() -> int:
    failed = [name for name in BENCHES if subprocess.run([sys.executable, "-m", name], check=False).returncode != 0]
    print("\nBuilt sizes (unzipped, from the last `make build`)")
    sizes = function_sizes()
    if sizes:
        print_sizes(sizes)
        print(f"  ({BUILD.relative_to(ROOT)})")
    else:
        print("  no build here: run `make build` for the package sizes")
    print("\nTargets (issue 12); figures from this run, noisy on a shared machine")
    for what, target, measured, met in targets():
        verdict = "" if met is None else ("met" if met else "NOT met")
        print(f"  {what:<46}{target:>14}{measured:>22}  {verdict}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
