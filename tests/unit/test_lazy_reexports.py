"""The layer build's lazy type catalogs (build_layer.LAZY_REEXPORTS): the rewritten
package gives every name the upstream file gave, as the same object, without
importing the catalog up front; and a file that is not the one checked, or that does
more than re-export, stops the build."""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.scripts.build_layer import LAZY_MARKER, LAZY_REEXPORTS, NotOnlyReexports, lazy_reexports, make_reexports_lazy

# For each catalog: a module of its library a first `chat` imports, and one submodule
# of the catalog that import must no longer load.
UNUSED_ON_IMPORT = {
    "openai/types/__init__.py": ("openai", "openai.types.graders"),
    "openai/types/responses/__init__.py": ("openai", "openai.types.responses.response_input_item"),
    "langsmith/types/__init__.py": ("langsmith.run_trees", "langsmith.types.custom_charts_section"),
    "langchain_openai/__init__.py": ("langchain_openai.chat_models", "langchain_openai.llms"),
    "langgraph_sdk/__init__.py": ("langgraph.runtime", "langgraph_sdk.client"),
}

# Prints, for each name, what it is (module and qualified name, or repr for aliases).
_RESOLVE = """
import importlib, json, sys
first, catalog, unused, names = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
importlib.import_module(first)
loaded_unused = unused in sys.modules
module = importlib.import_module(catalog)
def what(obj):
    name = getattr(obj, "__qualname__", None)
    return f"{obj.__module__}.{name}" if name and hasattr(obj, "__module__") else repr(obj)
names = {n: what(getattr(module, n)) for n in names}
listed = sorted(module.__all__) if "__all__" in module.__dict__ or hasattr(module, "_EXPORTS") else None
print(json.dumps({"loaded_unused": loaded_unused, "names": names, "all": listed,
                  "version": getattr(module, "__version__", None)}))
"""


def installed(relative: str) -> Path:
    spec = importlib.util.find_spec(relative.partition("/")[0])
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent.parent / relative


def exported_names(source: str) -> list[str]:
    nodes = [n for n in ast.parse(source).body if isinstance(n, ast.ImportFrom) and n.module != "__future__"]
    return [alias.asname or alias.name for node in nodes for alias in node.names]


def resolve(path: list[str], relative: str) -> dict[str, object]:
    first, unused = UNUSED_ON_IMPORT[relative]
    catalog = relative.removesuffix("/__init__.py").replace("/", ".")
    names = exported_names(installed(relative).read_text())
    code = f"import sys; sys.path[:0] = {path!r}\n" + _RESOLVE
    done = subprocess.run(
        [sys.executable, "-c", code, first, catalog, unused, json.dumps(names)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_each_pin_is_the_installed_file():
    # Fails when uv.lock moves openai or langsmith on: check the new file only
    # re-exports (lazy_reexports refuses anything else), then pin its sha256.
    for relative, pinned in LAZY_REEXPORTS.items():
        assert hashlib.sha256(installed(relative).read_bytes()).hexdigest() == pinned, relative


@pytest.mark.parametrize("relative", sorted(LAZY_REEXPORTS))
def test_the_lazy_catalog_gives_the_same_names_without_importing_them_up_front(tmp_path, relative):
    top = relative.partition("/")[0]
    upstream = installed(f"{top}/__init__.py").parent
    shutil.copytree(upstream, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    assert relative in make_reexports_lazy(tmp_path)
    assert (tmp_path / relative).read_text().count(LAZY_MARKER) == 1

    eager, lazy = resolve([], relative), resolve([str(tmp_path)], relative)
    assert eager["loaded_unused"] is True  # what the upstream file costs every import
    assert lazy["loaded_unused"] is False
    assert lazy["names"] == eager["names"]
    assert lazy["version"] == eager["version"]
    if eager["all"] is not None:
        assert lazy["all"] == eager["all"]
    assert len(lazy["names"]) >= 9  # type: ignore[arg-type]


def write_package(root: Path, init: str) -> None:
    (root / "lazypkg").mkdir()
    (root / "lazypkg/__init__.py").write_text(init)
    (root / "lazypkg/shapes.py").write_text("class Square:\n    pass\n\nclass Circle:\n    pass\n")
    (root / "lazypkg/colours.py").write_text("RED = 'red'\n")


def test_names_and_submodules_load_on_first_use(tmp_path, monkeypatch):
    init = (
        '"""A catalog."""\n\nfrom __future__ import annotations\n\nfrom .shapes import Square as Square\n'
        'from lazypkg.shapes import Circle\n\n__version__ = "1.0"\n__all__ = ["Circle", "Square"]\n'
    )
    write_package(tmp_path, init)
    make_lazy = lazy_reexports(init, tmp_path / "lazypkg", "digest", "lazypkg")
    (tmp_path / "lazypkg/__init__.py").write_text(make_lazy)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        package = importlib.import_module("lazypkg")
        assert (package.__doc__, package.__version__, package.__all__) == ("A catalog.", "1.0", ["Circle", "Square"])
        assert "lazypkg.shapes" not in sys.modules
        assert package.Square is importlib.import_module("lazypkg.shapes").Square
        assert package.Circle is importlib.import_module("lazypkg.shapes").Circle
        assert {"Square", "Circle"} <= set(dir(package))
        assert package.colours.RED == "red"  # a submodule, as an eager package may have bound it
        with pytest.raises(AttributeError):
            _ = package.Triangle
        assert not hasattr(package, "__wrapped__")
    finally:
        for name in [n for n in sys.modules if n.partition(".")[0] == "lazypkg"]:
            del sys.modules[name]


@pytest.mark.parametrize(
    ("init", "refusal"),
    [
        ("from .shapes import Square\nSquare.sides = 4\n", "not a re-export"),
        ("from .shapes import *\n", "star import"),
        ("import json\nfrom .shapes import Square\n", "not a re-export"),
        ("from json import loads\n", "not a re-export"),
        ("from .shapes import Circle as colours\n", "also submodules"),
        ("from .shapes import Square\n__all__ = ['Square', 'Circle']\n", "does not import"),
        ("from .shapes import Square\n__version__ = f'{Square}'\n", "not a re-export"),
    ],
)
def test_a_file_that_does_more_than_re_export_is_refused(tmp_path, init, refusal):
    write_package(tmp_path, init)
    with pytest.raises(NotOnlyReexports, match=refusal):
        lazy_reexports(init, tmp_path / "lazypkg", "digest", "lazypkg")


def test_a_changed_upstream_file_stops_the_build(tmp_path):
    relative = next(iter(LAZY_REEXPORTS))
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text(installed(relative).read_text() + "from .batch import Batch as Batch2\n")
    with pytest.raises(NotOnlyReexports, match="changed upstream"):
        make_reexports_lazy(tmp_path)


def test_a_snapshot_init_loads_every_package_the_build_makes_lazy():
    from mailroom.agent.preload import LAZY_PACKAGES

    assert {r.removesuffix("/__init__.py").replace("/", ".") for r in LAZY_REEXPORTS} == set(LAZY_PACKAGES)
