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
- tests, type stubs and caches;
then compiles every module to CPython 3.13 bytecode (see compile_bytecode).
tests/build/test_layers.py builds the same layers for x86_64 and imports from them
every module Mailroom imports, with a client for each kept service, and checks that
none of them is compiled from source at import.
"""

from __future__ import annotations

import argparse
import py_compile
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

# Where Lambda extracts a layer's python/ folder.
LAMBDA_SITE = Path("/opt/python")
# Top-level packages that keep their sources (bytecode in __pycache__ beside them); all
# others ship sourceless bytecode. Mailroom's own package, for tracebacks with source
# lines in its logs. anyio builds its public names at import by parsing its own
# __init__.py (anyio/_lazyimport.py: inspect.getsource(module)); without the source it
# quietly falls back to importing every submodule at once (tests/build records every
# source lookup that fails: anyio's were the only ones on the agent's path). LangChain Core calls
# inspect.getsource on the functions it wraps as runnables (runnables/utils.py: input
# keys, lambda names, nonlocals, which LangGraph uses to find subgraphs in nodes), and
# LangGraph's and LangChain's own functions can be among them: a failure there falls
# back quietly to another answer, so those keep their sources too (~4.5 MB).
KEEP_SOURCE = {"mailroom", "anyio", "langchain_core", "langgraph", "langchain_openai"}


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


def compile_bytecode(site: Path, python_version: str = "3.13", keep_source: set[str] = KEEP_SOURCE) -> int:
    """Compile every module for the running CPython (the runtime's 3.13); returns the
    bytes the sources took that are no longer shipped.

    Lambda's /opt is read-only, so a layer without bytecode makes every cold start
    compile every module it imports (the whole agent path: seconds), and the cache it
    would write is lost. The bytecode must be valid as shipped: a zip keeps file times
    to 2 seconds only and what Lambda's unzip sets is not documented, so bytecode
    checked against its source's time could be stale, recompiled at every cold start;
    `unchecked-hash` bytecode (PEP 552) is used without looking at the source, and the
    same inputs build the same bytes. Every CPython 3.13 release reads the same
    bytecode format (one magic number per minor version), so the local 3.13 that builds
    it and Lambda's agree. Bytecode beside every source would cost ~34 MB more (the
    worker ~130 MB, over its 100 MB budget), so third-party packages but those in
    KEEP_SOURCE ship legacy sourceless bytecode (`module.pyc` in place of `module.py`,
    loaded by SourcelessFileLoader). What a sourceless module loses: its source lines
    in tracebacks (file names and line numbers stay) and inspect.getsource on its
    objects.
    """
    running = "{}.{}".format(*sys.version_info[:2])
    if running != python_version:
        raise SystemExit(f"bytecode is per Python version: build with python{python_version}, not {running}")
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    freed = 0
    for entry in sorted(site.iterdir()):
        if entry.suffix in (".dist-info", ".data") or not (entry.is_dir() or entry.suffix == ".py"):
            continue
        legacy = entry.name.removesuffix(".py") not in keep_source
        sources = [entry] if entry.is_file() else sorted(entry.rglob("*.py"))
        for source in sources:
            target = str(source.with_suffix(".pyc")) if legacy else None
            # The file name tracebacks show is where Lambda puts the layer (the same
            # bytes whatever folder built them). doraise: a module that does not compile
            # would be compiled again at every cold start and fail there; fail the build.
            shown = str(LAMBDA_SITE / source.relative_to(site))
            py_compile.compile(str(source), target, shown, doraise=True, optimize=0, invalidation_mode=mode)
            if legacy:
                freed += source.stat().st_size
                source.unlink()
    return freed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path, help="the layer's folder, e.g. layers/common")
    parser.add_argument("artifacts", type=Path, help="SAM's ARTIFACTS_DIR")
    parser.add_argument("--python-version", default="3.13")
    parser.add_argument("--architecture", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument(
        "--sources-only", action="store_true", help="ship no bytecode (only to measure what it saves: make bench)"
    )
    args = parser.parse_args(argv)

    site = args.artifacts / "python"
    site.mkdir(parents=True, exist_ok=True)
    install(args.source / "requirements.txt", site, args.python_version, args.architecture)
    if (args.source / "mailroom").is_dir():
        shutil.copytree(args.source / "mailroom", site / "mailroom", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    freed = prune(site)
    sourceless = 0 if args.sources_only else compile_bytecode(site, args.python_version)
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    print(
        f"layer: {size / 2**20:.1f} MiB unzipped ({freed / 2**20:.1f} MiB of unused files removed, "
        f"{sourceless / 2**20:.1f} MiB of third-party sources replaced by their bytecode)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
