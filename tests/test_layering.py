"""The package's modules import each other one way, in the order the documentation's
Development page (`docs/development.md`) lists them: no cycles, and `_keras_integration`
imports no other module of ours. A subpackage (`diagnostics/`) is one place in that order:
its files may import each other and the modules below it."""

import ast
import pathlib

import keras_relu

PACKAGE = pathlib.Path(keras_relu.__file__).parent
# Lowest first: a module may import only modules before it.
LAYERS = [
    "_checks",
    "_keras_integration",
    "_torch_kernels",
    "activations",
    "layers",
    "registry",
    "initializers",
    "diagnostics",
    "onnx",
    "swap",
]


def imported_modules(path):
    """The keras_relu modules that the file at `path` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "keras_relu":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_relu."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("keras_relu.")
            )
    return found


def files_of(module):
    """The source files of `module`: its one file, or every file of a subpackage."""
    path = PACKAGE / module
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def test_every_module_is_placed_in_the_layering():
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    modules |= {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert modules == set(LAYERS)


def test_modules_import_only_lower_ones():
    for position, module in enumerate(LAYERS):
        for path in files_of(module):
            higher = imported_modules(path) - set(LAYERS[: position + 1])
            assert not higher, f"{path.relative_to(PACKAGE)} imports {sorted(higher)}, above it"


def test_the_layering_is_the_development_page_s():
    section = (PACKAGE.parent / "docs" / "development.md").read_text()
    positions = [
        section.index(f"`{name}/`" if (PACKAGE / name).is_dir() else f"`{name}.py`")
        for name in LAYERS
        if name != "_checks"
    ]
    positions.insert(0, section.index("`keras_relu/_checks.py`"))
    assert positions == sorted(positions)
