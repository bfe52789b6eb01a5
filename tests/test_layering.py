"""The package's modules import each other one way, in the order README's Development
section lists them: no cycles, and `_keras_integration` imports no other module of ours."""

import ast
import pathlib

import keras_relu

PACKAGE = pathlib.Path(keras_relu.__file__).parent
# Lowest first: a module may import only modules before it.
LAYERS = [
    "_checks",
    "_keras_integration",
    "activations",
    "layers",
    "registry",
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


def test_every_module_is_placed_in_the_layering():
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS)


def test_modules_import_only_lower_ones():
    for position, module in enumerate(LAYERS):
        imports = imported_modules(PACKAGE / f"{module}.py")
        higher = imports - set(LAYERS[:position])
        assert not higher, f"keras_relu/{module}.py imports {sorted(higher)}, which sit above it"


def test_the_layering_is_readme_s():
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme[readme.index("## Development") :]
    positions = [section.index(f"`{name}.py`") for name in LAYERS if name != "_checks"]
    positions.insert(0, section.index("`keras_relu/_checks.py`"))
    assert positions == sorted(positions)
