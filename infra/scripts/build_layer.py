"""Build a Lambda layer for arm64 without Docker: `sam build` runs this through the
layer's Makefile (BuildMethod: makefile).

Installs the layer's exported requirements (fully resolved, hence --no-deps) as
manylinux aarch64 wheels for CPython 3.13, as SAM's own Python builder would, copies
the mailroom package when the layer holds it, then removes what never runs on Lambda.
The big one: googleapiclient ships ~110 MB of discovery documents for every Google
API; Mailroom builds only Gmail's (static discovery), so only that stays.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64")
KEEP_DISCOVERY = {"gmail.v1.json"}
# Directories no import ever reaches in Lambda.
PRUNE_DIRS = {"__pycache__", "tests", "test"}


def install(requirements: Path, target: Path, python_version: str) -> None:
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--requirement", str(requirements), "--target", str(target),
            "--implementation", "cp", "--python-version", python_version,
            "--only-binary=:all:", "--no-compile", "--upgrade", "--no-deps",
            *platform_args,
        ],
        check=True,
    )  # fmt: skip


def prune(site: Path) -> int:
    """Delete what Lambda never loads; returns the bytes freed."""
    freed = 0
    documents = site / "googleapiclient" / "discovery_cache" / "documents"
    for document in documents.glob("*.json"):
        if document.name not in KEEP_DISCOVERY:
            freed += document.stat().st_size
            document.unlink()
    for directory in sorted(site.rglob("*"), reverse=True):
        if directory.is_dir() and directory.name in PRUNE_DIRS and "dist-info" not in str(directory.parent):
            freed += sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
            shutil.rmtree(directory, ignore_errors=True)
    return freed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path, help="the layer's folder, e.g. layers/common")
    parser.add_argument("artifacts", type=Path, help="SAM's ARTIFACTS_DIR")
    parser.add_argument("--python-version", default="3.13")
    args = parser.parse_args(argv)

    site = args.artifacts / "python"
    site.mkdir(parents=True, exist_ok=True)
    install(args.source / "requirements.txt", site, args.python_version)
    if (args.source / "mailroom").is_dir():
        shutil.copytree(args.source / "mailroom", site / "mailroom", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    freed = prune(site)
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    print(f"layer: {size / 2**20:.1f} MiB unzipped ({freed / 2**20:.1f} MiB of unused files removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
