"""`python -m infra.bench`: every benchmark, each in its own interpreter (the ingress,
then the worker), so that neither measures what the other imported."""

from __future__ import annotations

import subprocess
import sys

BENCHES = ("infra.bench.ingress", "infra.bench.worker")


def main() -> int:
    failed = [name for name in BENCHES if subprocess.run([sys.executable, "-m", name], check=False).returncode != 0]
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
