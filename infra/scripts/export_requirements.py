"""Export each layer's requirements.txt from uv.lock (`make requirements`).

layers/common gets the project's runtime dependencies (every function has it);
layers/agent gets the `agent` group's (only the worker has it), minus what the common
layer already carries, so no package ships twice. `--check` only compares.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ["export", "--frozen", "--no-emit-project", "--no-hashes", "--no-header", "--no-annotate", "--quiet"]
HEADER = "# Exported from uv.lock by `make requirements`; do not edit.\n"


def export(uv: str, *groups: str) -> list[str]:
    out = subprocess.run([uv, *EXPORT, *groups], check=True, capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip() and not line.startswith("#")]


def name(requirement: str) -> str:
    return re.split(r"[=<>~!;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def wanted(uv: str) -> dict[Path, str]:
    common = export(uv, "--no-dev", "--no-default-groups")
    agent_all = export(uv, "--no-default-groups", "--only-group", "agent")
    have = {name(r) for r in common}
    agent = [r for r in agent_all if name(r) not in have]
    return {
        ROOT / "layers/common/requirements.txt": HEADER + "\n".join(common) + "\n",
        ROOT / "layers/agent/requirements.txt": HEADER + "\n".join(agent) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uv", default="uv")
    parser.add_argument("--check", action="store_true", help="fail if a file differs instead of writing it")
    args = parser.parse_args(argv)
    stale = []
    for path, text in wanted(args.uv).items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT))
        else:
            path.write_text(text)
    if stale:
        print(f"out of date with uv.lock: {', '.join(map(str, stale))}; run 'make requirements'", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
