"""The shape of the package, read from its source (the AST of every module; imports inside
functions and under ``if TYPE_CHECKING:`` count): no package imports upward or in a circle, only
``runlens.keras`` imports Keras or TensorFlow, nothing imports torch, Lightning or transformers,
and no module grows past ~400 lines (issue 10's "Done when")."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "runlens"

# Each unit -- a top-level module or a subpackage of runlens -- may import units of lower layers
# only (and itself). Two units of one layer may not import each other, so no circle can form.
# A new unit must be placed here: the test names it.
LAYERS: list[dict[str, str]] = [
    {
        "__init__": "the public API: __version__ and a lazy table of names, no imports",
        "textsafe": "names shown escaped (the CLI prints through it before pandas loads)",
        "name_columns": "the dtype names are kept in",
        "times": "the time convention of every frame",
        "units": "byte counts for people",
        "privatefiles": "folders and files only you control",
        "row_keys": "rows grouped by packed integer keys (NumPy only)",
        "processes": "worker processes, and when forking is safe",
        "jsondata": "JSON from disk parsed so that every kind of damage is a ValueError",
    },
    {"errors": "RunlensError and the warnings"},
    {
        "options": "what the CLI offers and defaults to",
        "arguments": "argument checks and vocabularies",
        "atomic": "outputs written whole or not at all",
    },
    {
        "events": "event files -> the long frame",
        "export": "csv / parquet / json",
        "policies": "pure replays of training-control policies: no I/O",
    },
    {
        "epochs": "long frame -> one row per epoch",
        "manifest": "runlens.json",
        "lightning": "public face of the Lightning policies",
        "transformers": "public face of the HF Trainer policies",
        "torch": "public face of the torch policies",
    },
    {"evals": "one row per evaluation, any framework", "hparams": "read_hparams"},
    {"checkpoints": "index (metrics joined from the logs), retention rules, plans, the one deleter"},
    {"report": "build and render the report", "keras": "the bundled Keras callbacks"},
    {"cli": "click commands, no logic of their own"},
    {"__main__": "python -m runlens"},
]
LAYER = {unit: rank for rank, layer in enumerate(LAYERS) for unit in layer}

TENSORFLOW = {"tensorflow", "keras", "tf_keras"}  # only runlens.keras may import these
FRAMEWORKS = {"torch", "lightning", "pytorch_lightning", "lightning_fabric", "transformers"}  # nothing may
MAX_LINES = 400
# Modules allowed past MAX_LINES, with the reason they must stay whole. None today.
LONG_MODULES: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # what it imports, dotted (absolute)
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[Import]:
    """Every import in ``path``, anywhere in it, as absolute dotted names; ``from x import y``
    gives ``x.y`` (a submodule or a name of ``x``: resolved by the caller)."""
    module, found = module_name(path), []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found += [Import(module, f"{base}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Call) and (name := _imported_by_call(node)) is not None:
            found.append(Import(module, name, node.lineno))
    return found


def _imported_by_call(call: ast.Call) -> str | None:
    """``"x"`` of ``importlib.import_module("x")`` or ``__import__("x")``, else None."""
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    first = call.args[0] if call.args else None
    if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
        return first.value if isinstance(first.value, str) else None
    return None


MODULES = sorted(PACKAGE.rglob("*.py"))
IMPORTS = [found for path in MODULES for found in imports_of(path)]


def where(found: Import) -> str:
    return f"{found.module} (line {found.line}) imports {found.target}"


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(path)) for path in MODULES}
    assert units - set(LAYER) == set(), "place the new module or package in LAYERS"
    assert set(LAYER) - units == set(), "a unit in LAYERS no longer exists: remove it"


def test_no_package_imports_upward_or_in_a_circle():
    wrong = []
    for found in IMPORTS:
        if found.target.split(".")[0] != "runlens" or found.target == "runlens.__version__":
            continue  # (every module may read the version: the root package imports nothing)
        source, target = unit_of(found.module), unit_of(found.target)
        if found.target == "runlens" or target not in LAYER:  # the facade re-exports everything
            wrong.append(f"{where(found)}: import the module that defines it, not the runlens facade")
        elif target != source and not LAYER[target] < LAYER[source]:
            wrong.append(
                f"{where(found)}: {source} (layer {LAYER[source]}) -> {target} (layer {LAYER[target]})"
            )
    assert wrong == []


def test_the_root_package_imports_nothing_at_module_level():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    assert not [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_policies_import_nothing_of_the_packages_that_read_decide_or_print():
    banned = {"events", "report", "checkpoints", "keras", "cli", "evals", "epochs", "hparams"}
    assert [
        where(f)
        for f in IMPORTS
        if unit_of(f.module) == "policies" and f.target.startswith("runlens.")
        if unit_of(f.target) in banned
    ] == []


def test_only_runlens_keras_imports_tensorflow_or_keras_and_nothing_imports_torch_lightning_or_transformers():
    tensorflow = [
        where(f) for f in IMPORTS if f.target.split(".")[0] in TENSORFLOW and unit_of(f.module) != "keras"
    ]
    frameworks = [where(f) for f in IMPORTS if f.target.split(".")[0] in FRAMEWORKS]
    assert tensorflow == [] and frameworks == []


def test_json_from_disk_is_parsed_only_through_runlens_jsondata():
    """``json.loads``/``json.load`` raise RecursionError on JSON nested thousands deep, which a
    reader catching ValueError lets through (it crashed five readers): runlens.jsondata.loads
    makes it a ValueError, and is the only caller."""
    calls = [
        f"{module_name(path)} (line {node.lineno}) calls json.{node.func.attr}"
        for path in MODULES
        if module_name(path) != "runlens.jsondata"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if node.func.attr in ("loads", "load") and isinstance(node.func.value, ast.Name)
        if node.func.value.id == "json"
    ]
    assert calls == []


def test_the_checks_see_imports_inside_functions():
    # read_hparams imports TensorBoard's protobuf classes inside a function, on first use.
    inside = [f for f in IMPORTS if f.module == "runlens.hparams" and f.target.startswith("tensorboard.")]
    assert inside, "imports inside functions are no longer found"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    name = str(path.relative_to(PACKAGE))
    lines = len(path.read_text().splitlines())
    if name in LONG_MODULES:
        assert lines > MAX_LINES, f"{name} is {lines} lines now: remove it from LONG_MODULES"
    else:
        assert lines <= MAX_LINES, f"{name} is {lines} lines: split it (one module, one idea)"
