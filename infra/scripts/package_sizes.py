"""After `sam build`: each function's unzipped size with its layers, against Lambda's
250 MB limit (code plus all layers, unzipped) and Mailroom's own budget for the worker.
Exits 1 if any function is over Lambda's limit."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from infra.local.template import ROOT, load_template

LIMIT_BYTES = 250 * 1024 * 1024  # 262,144,000 bytes, as Lambda counts it
WORKER_BUDGET_BYTES = 100 * 2**20  # issue 12: the worker (code and layers) within 100 MB
BUILD = ROOT / ".aws-sam" / "build"


@dataclass(frozen=True)
class FunctionSize:
    logical_id: str
    code: int
    layers: int

    @property
    def total(self) -> int:
        return self.code + self.layers


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def function_sizes(build: Path = BUILD) -> list[FunctionSize]:
    """Each function of the last build with its layers (empty if there is no build)."""
    if not (build / "template.yaml").is_file():
        return []
    built = load_template(build / "template.yaml")
    resources = built["Resources"]
    layer_sizes = {
        lid: tree_size(build / lid) for lid, res in resources.items() if res["Type"] == "AWS::Serverless::LayerVersion"
    }
    default_layers = built.get("Globals", {}).get("Function", {}).get("Layers", [])
    sizes = []
    for lid, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        # SAM appends a function's own Layers to those of Globals.
        layers = [*default_layers, *res["Properties"].get("Layers", [])]
        sizes.append(FunctionSize(lid, tree_size(build / lid), sum(layer_sizes[layer["Ref"]] for layer in layers)))
    return sizes


def print_sizes(sizes: list[FunctionSize]) -> None:
    print(f"{'function':<24}{'code':>10}{'layers':>10}{'total':>10}  of 250 MB")
    for size in sizes:
        cells = "".join(f"{value / 2**20:>8.1f}MB" for value in (size.code, size.layers, size.total))
        print(f"{size.logical_id:<24}{cells}  {size.total / LIMIT_BYTES:>5.0%}")


def main() -> int:
    sizes = function_sizes()
    if not sizes:
        print("no build: run `make build` first", file=sys.stderr)
        return 1
    print_sizes(sizes)
    if any(size.total > LIMIT_BYTES for size in sizes):
        print("A function is over Lambda's 250 MB unzipped limit.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
