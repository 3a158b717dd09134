"""Run checkov on template.yaml and fail on any failure not in the justified skip list.

    python -m infra.scripts.checkov_gate [--checkov CMD]

The skip list (infra/security/checkov-skips.yaml) names each check and resource that
does not apply, with the reason. An entry that no longer fails is reported too, so the
list stays true. checkov runs offline (--skip-download).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SKIPS = ROOT / "infra/security/checkov-skips.yaml"


def skipped(path: Path = SKIPS) -> set[tuple[str, str]]:
    entries = yaml.safe_load(path.read_text()) or []
    pairs: set[tuple[str, str]] = set()
    for entry in entries:
        if not str(entry.get("reason", "")).strip():
            raise SystemExit(f"{path}: {entry.get('check')} has no reason")
        pairs |= {(str(entry["check"]), str(resource)) for resource in entry["resources"]}
    return pairs


def failures(report: Any) -> set[tuple[str, str]]:
    reports = report if isinstance(report, list) else [report]
    found: set[tuple[str, str]] = set()
    for one in reports:
        for failed in one.get("results", {}).get("failed_checks", []):
            # "AWS::Serverless::Function.IngressFunction" -> "IngressFunction"
            found.add((failed["check_id"], failed["resource"].rsplit(".", 1)[-1]))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkov", default="checkov", help="command that runs checkov")
    options = parser.parse_args(argv)
    command = [
        *shlex.split(options.checkov),
        *("-f", str(ROOT / "template.yaml"), "--framework", "cloudformation"),
        *("--skip-download", "--quiet", "-o", "json"),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode not in (0, 1) or not completed.stdout.strip():
        print(completed.stderr[-2000:], file=sys.stderr)
        print(f"checkov did not run (exit {completed.returncode})", file=sys.stderr)
        return 2
    report = json.loads(completed.stdout)
    found, allowed = failures(report), skipped()
    new, stale = sorted(found - allowed), sorted(allowed - found)
    for check, resource in new:
        print(f"checkov: {check} fails on {resource} (fix it, or justify it in {SKIPS.relative_to(ROOT)})")
    for check, resource in stale:
        print(f"checkov: {check} on {resource} passes now; remove it from {SKIPS.relative_to(ROOT)}")
    if new or stale:
        return 1
    print(f"checkov: no failure outside the {len(allowed)} justified skips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
