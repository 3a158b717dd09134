"""Build a Lambda layer for arm64 without Docker: `sam build` runs this through the
layer's Makefile (BuildMethod: makefile).

Installs the layer's exported requirements (fully resolved, hence --no-deps) as
manylinux aarch64 wheels for CPython 3.13, as SAM's own Python builder would, copies
the mailroom package when the layer holds it, then removes what never runs on Lambda:
- googleapiclient's ~110 MB of discovery documents for every Google API: Mailroom
  builds only Gmail's (static discovery), so only that stays;
- botocore's models of ~450 AWS services (28 MB): Mailroom's clients, and its
  libraries', talk to the few in BOTOCORE_SERVICES;
- zstandard's CFFI backend (12 MB): CPython always loads its C extension (and only
  LangSmith's trace upload, which Mailroom leaves off, uses it at all);
- tests, type stubs and caches.
tests/build/test_layers.py builds the same layers for x86_64 and imports from them
every module Mailroom imports, with a client for each kept service.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

# Lambda's arm64 (what the template deploys); x86_64 builds the same layer set for a
# test on this machine's architecture (tests/build/test_layers.py).
PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"),
}
KEEP_DISCOVERY = {"gmail.v1.json"}
# The AWS services any client in the functions talks to: Mailroom's own (DynamoDB, SQS,
# KMS, Secrets Manager), the Encryption SDK's (KMS), the X-Ray SDK's sampling rules
# (xray), and STS for credentials that are assumed rather than given.
BOTOCORE_SERVICES = {"dynamodb", "sqs", "kms", "secretsmanager", "xray", "sts"}
# Directories no import ever reaches in Lambda.
PRUNE_DIRS = {"__pycache__", "tests", "test"}
# Files no import loads: type stubs, and the backend zstandard never picks on CPython.
PRUNE_GLOBS = ("*.pyi", "zstandard/_cffi.*.so", "zstandard/backend_cffi.py")


def install(requirements: Path, target: Path, python_version: str, architecture: str = "arm64") -> None:
    platform_args = [arg for p in PLATFORMS[architecture] for arg in ("--platform", p)]
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
    models = site / "botocore" / "data"
    for service in [d for d in models.iterdir() if d.is_dir()] if models.is_dir() else []:
        if service.name not in BOTOCORE_SERVICES:
            freed += sum(f.stat().st_size for f in service.rglob("*") if f.is_file())
            shutil.rmtree(service)
    for stubs in site.glob("*-stubs"):
        freed += sum(f.stat().st_size for f in stubs.rglob("*") if f.is_file())
        shutil.rmtree(stubs)
    for pattern in PRUNE_GLOBS:
        for file in site.glob(pattern) if "/" in pattern else site.rglob(pattern):
            freed += file.stat().st_size
            file.unlink()
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
    parser.add_argument("--architecture", choices=sorted(PLATFORMS), default="arm64")
    args = parser.parse_args(argv)

    site = args.artifacts / "python"
    site.mkdir(parents=True, exist_ok=True)
    install(args.source / "requirements.txt", site, args.python_version, args.architecture)
    if (args.source / "mailroom").is_dir():
        shutil.copytree(args.source / "mailroom", site / "mailroom", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    freed = prune(site)
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    print(f"layer: {size / 2**20:.1f} MiB unzipped ({freed / 2**20:.1f} MiB of unused files removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
