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
makes the generated type catalogs in LAZY_REEXPORTS import each name on first use
(see make_reexports_lazy); then compiles every module to CPython 3.13 bytecode (see
compile_bytecode).
tests/build/test_layers.py builds the same layers for x86_64 and imports from them
every module Mailroom imports, with a client for each kept service, and checks that
none of them is compiled from source at import.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
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


# Package __init__ files that only re-export names from their submodules, and the
# sha256 of the upstream file each was checked at. Importing `openai` (which
# langchain_openai does) runs openai/types/__init__.py, which imports every one of
# OpenAI's ~600 API types (evals, graders, realtime, ...); LangChain Core imports
# langsmith.run_trees, which imports langsmith/types/__init__.py the same way:
# ~0.45 s of a first `chat`'s import, for types it never uses. langchain_openai's
# imports its legacy completions and embeddings models (and YAML) beside ChatOpenAI;
# LangGraph imports langgraph_sdk.auth.types, and langgraph_sdk's runs its whole
# remote client (websockets, its HTTP stack) for it. make_reexports_lazy rewrites
# these files to PEP 562 re-exports: the same names, each imported from its submodule
# the first time it is looked up. A changed upstream file fails the build (and
# tests/unit/test_lazy_reexports.py) until it is checked again: still only
# re-exports? then its new sha256 goes here.
LAZY_REEXPORTS = {
    "openai/types/__init__.py": "98f15c4ee123816edfbbd0b758a67ca30b80f80939d158e8bed9a1b518d7c6ae",
    "openai/types/responses/__init__.py": "b0ba985bd25b4e8d4e9b7432907070a8ea77ac6cbd702b2da885ce79bbb7162a",
    "langsmith/types/__init__.py": "0435a46342d07758715d0e5e0dcab313fa290ffb32951eddb7aa6ee17cb59cd2",
    "langchain_openai/__init__.py": "5673ccbe8f53267c2027dd390051424928a6e1e744c2f8c8a418960a29dccf4d",
    "langgraph_sdk/__init__.py": "eef26e57407f3d777b10305f544b2f352eab25c35f3bef2d82e7ba98994f4464",
}
LAZY_MARKER = "# Lazy re-exports written by Mailroom's layer build"

_LAZY_MODULE = """{head}{marker} (infra/scripts/build_layer.py)
# from the upstream file of sha256 {digest}:
# the same names, each imported from its submodule the first time it is looked up (PEP 562).
import importlib as _importlib

{constants}_EXPORTS = {exports!r}
__all__ = {public!r}


def __getattr__(name):
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(_importlib.import_module(module, __name__), attribute)
    elif name.startswith("__"):
        raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
    else:
        # The eager file bound, as a side effect, every submodule it imported.
        try:
            value = _importlib.import_module(f"{{__name__}}.{{name}}")
        except ModuleNotFoundError as missing:
            if missing.name != f"{{__name__}}.{{name}}":
                raise
            raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
"""


class NotOnlyReexports(ValueError):
    """A file LAZY_REEXPORTS names does more than re-export, or is not the file checked."""


def lazy_reexports(source: str, package_dir: Path, digest: str, package: str) -> str:
    """The PEP 562 module that re-exports what `source`, the __init__.py of `package`,
    does, importing on first use. The file may hold only a docstring, `from __future__`,
    imports of names from the package's own submodules (`from .sub import Name` or
    `from package.sub import Name`), `__version__ = "..."` and `__all__ = [...]`."""
    exports: dict[str, tuple[str, str]] = {}
    head, constants = "", ""
    listed: list[str] | None = None
    tree = ast.parse(source)
    body = tree.body
    if ast.get_docstring(tree) is not None:
        head, body = ast.unparse(body[0]) + "\n", body[1:]
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            head += ast.unparse(node) + "\n"
        elif isinstance(node, ast.ImportFrom) and node.module and _own_module(node, package):
            for alias in node.names:
                if alias.name == "*":
                    raise NotOnlyReexports(f"a star import: {ast.unparse(node)!r}")
                exports[alias.asname or alias.name] = ("." * node.level + node.module, alias.name)
        elif isinstance(_constant(node, "__version__"), str):
            constants += ast.unparse(node) + "\n"
        elif isinstance(names := _constant(node, "__all__"), list):
            listed = names
        else:
            raise NotOnlyReexports(f"not a re-export: {ast.unparse(node)[:100]!r}")
    # A name that is also a submodule would be rebound to the module by its import.
    submodules = {p.stem for p in package_dir.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    clashes = sorted(set(exports) & submodules)
    if clashes:
        raise NotOnlyReexports(f"names that are also submodules: {clashes}")
    public = [name for name in exports if not name.startswith("_")] if listed is None else listed
    unknown = sorted(set(public) - set(exports) - ({"__version__"} if constants else set()))
    if unknown:
        raise NotOnlyReexports(f"__all__ names what the file does not import: {unknown}")
    return _LAZY_MODULE.format(
        head=head, marker=LAZY_MARKER, digest=digest, constants=constants, exports=exports, public=public
    )


def _own_module(node: ast.ImportFrom, package: str) -> bool:
    """`from .sub import ...`, or `from <package>.sub import ...`."""
    module = node.module or ""
    return node.level == 1 or (node.level == 0 and module.startswith(package + "."))


def _constant(node: ast.stmt, name: str) -> str | list[str] | None:
    """The value of `name = <a string, or a list of strings>`, else None."""
    if not (isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [name]):
        return None
    try:
        value = ast.literal_eval(node.value)
    except ValueError:
        return None
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    return None


def make_reexports_lazy(site: Path) -> list[str]:
    """Rewrite the LAZY_REEXPORTS files this layer holds; returns those rewritten."""
    rewritten = []
    for relative, pinned in LAZY_REEXPORTS.items():
        path = site / relative
        if not path.is_file():
            continue
        source = path.read_bytes()
        digest = hashlib.sha256(source).hexdigest()
        if digest != pinned:
            raise NotOnlyReexports(
                f"{relative} changed upstream (sha256 {digest}): check it only re-exports, then pin it "
                "in LAZY_REEXPORTS"
            )
        package = relative.removesuffix("/__init__.py").replace("/", ".")
        path.write_text(lazy_reexports(source.decode(), path.parent, digest, package))
        rewritten.append(relative)
    return rewritten


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
    make_reexports_lazy(site)
    sourceless = 0 if args.sources_only else compile_bytecode(site, args.python_version)
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    print(
        f"layer: {size / 2**20:.1f} MiB unzipped ({freed / 2**20:.1f} MiB of unused files removed, "
        f"{sourceless / 2**20:.1f} MiB of third-party sources replaced by their bytecode)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
