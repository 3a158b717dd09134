"""After `sam build`: each function's unzipped size with its layers, against Lambda's
250 MB limit (code plus all layers, unzipped). Exits 1 if any function is over it."""

from __future__ import annotations

import sys
from pathlib import Path

from infra.local.template import ROOT, load_template

LIMIT_BYTES = 250 * 1024 * 1024  # 262,144,000 bytes, as Lambda counts it
BUILD = ROOT / ".aws-sam" / "build"


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    built = load_template(BUILD / "template.yaml")
    resources = built["Resources"]
    layer_sizes = {
        lid: tree_size(BUILD / lid) for lid, res in resources.items() if res["Type"] == "AWS::Serverless::LayerVersion"
    }
    default_layers = built.get("Globals", {}).get("Function", {}).get("Layers", [])
    over = False
    print(f"{'function':<24}{'code':>10}{'layers':>10}{'total':>10}  of 250 MB")
    for lid, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        # SAM appends a function's own Layers to those of Globals.
        layers = [*default_layers, *res["Properties"].get("Layers", [])]
        code = tree_size(BUILD / lid)
        with_layers = sum(layer_sizes[layer["Ref"]] for layer in layers)
        total = code + with_layers
        over |= total > LIMIT_BYTES
        sizes = "".join(f"{size / 2**20:>8.1f}MB" for size in (code, with_layers, total))
        print(f"{lid:<24}{sizes}  {total / LIMIT_BYTES:>5.0%}")
    if over:
        print("A function is over Lambda's 250 MB unzipped limit.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
