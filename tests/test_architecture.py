"""The shape of the code: layers that import one way, small modules, ruff clean, a lazy door to the
exporters, no swallowed KeyboardInterrupt, and the package list pyproject installs.

Layers, bottom first (CONTRIBUTING.md says what goes where). A module-level import may go to its own
layer or a lower one; the exporters (installed as ``msjax_exporters``) sit above all of msjax, and
msjax reaches them only through ``msjax._lazy``, when called.
"""
from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAX_LINES = 400

#: module-name prefix -> layer; the longest matching prefix wins
LAYERS = {
    "msjax.errors": 0, "msjax.context": 0, "msjax._proto": 0, "msjax._lazy": 0,
    "msjax.common.dtype": 0, "msjax.common.validator": 0, "msjax.common.atomic": 0,
    "msjax.common.untrusted": 0, "msjax.common.formats": 0,
    "msjax.common": 1,
    "msjax.checkpoint": 2, "msjax.ops": 2, "msjax.dataset": 2, "msjax.graph_io": 2,
    "msjax.nn": 3,
    "msjax.models": 4, "msjax.train": 4,
    "msjax": 5,            # the top-level __init__, cli and demo
    "msjax_exporters": 6,
}


def _modules():
    """module name -> source path, for msjax and the exporters (as installed: msjax_exporters)."""
    found = {}
    for folder, package in (("msjax", "msjax"), ("exporters", "msjax_exporters")):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer_of(module):
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    return None if best is None else LAYERS[best]


def _imports(module, path, top_level_only):
    """(line, imported module) for each import of msjax/msjax_exporters in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:        # imports under a module-level if/try still run at import time
        nodes = [n for top in tree.body for n in ([top] if not isinstance(top, (ast.If, ast.Try))
                                                  else ast.walk(top))]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # ``from pkg import sub`` imports the submodule, not the package's other names
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in ("msjax", "msjax_exporters", "exporters"):
                yield node.lineno, name


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer_of(m) is None] == []


def test_module_level_imports_go_down():
    wrong = []
    for module, path in MODULES.items():
        for line, name in _imports(module, path, top_level_only=True):
            target = layer_of(name)
            if target is None or target > layer_of(module):
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({module}, layer {layer_of(module)}) "
                             f"imports {name} (layer {target})")
    assert wrong == [], "\n".join(wrong)


def test_msjax_reaches_the_exporters_only_through_lazy():
    wrong = []
    for module, path in MODULES.items():
        if module.startswith("msjax_exporters") or module == "msjax._lazy":
            continue
        for line, name in _imports(module, path, top_level_only=False):
            if name.split(".")[0] in ("msjax_exporters", "exporters"):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert wrong == [], "\n".join(wrong)


def test_nothing_imports_exporters_by_its_folder_name():
    """Installed, the folder is ``msjax_exporters``; ``import exporters`` would find another project."""
    wrong = []
    for path in [*MODULES.values(), *sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "benchmarks").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "exporters"]
    assert wrong == []


def test_import_msjax_loads_no_exporter():
    code = "import msjax, sys; print([m for m in sys.modules if 'exporters' in m])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_the_lazy_faces_still_reach_the_exporters():
    from msjax import nn

    graph_cell = nn.GraphCell
    assert graph_cell.__module__ == "msjax_exporters.graph_cell" and issubclass(graph_cell, nn.Cell)
    assert "GraphCell" in dir(nn)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchLayer'"):
        nn.NoSuchLayer  # noqa: B018


def test_no_library_module_over_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values()
            if "_proto" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _swallows(handler):
    """An ``except BaseException``/bare ``except`` whose body never re-raises."""
    catches = handler.type is None or (isinstance(handler.type, ast.Name) and handler.type.id == "BaseException") or (
        isinstance(handler.type, ast.Tuple) and any(getattr(e, "id", "") == "BaseException" for e in handler.type.elts))
    return catches and not any(isinstance(n, ast.Raise) for n in ast.walk(handler))


def test_no_except_base_exception_that_swallows():
    wrong = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in MODULES.values()
             for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.ExceptHandler) and _swallows(n)]
    assert wrong == []


def test_pyproject_installs_every_package():
    tomllib = pytest.importorskip("tomllib")    # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    assert sorted(config["packages"]) == sorted(packages)
    assert config["package-dir"] == {"msjax_exporters": "exporters"}


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: the test extra installs it (pip install -e '.[test]')"
    out = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
