"""The layout of sim/: each subpackage imports only the layers below it (the model core imports nothing else from
sim/), and no test module imports another test module (shared helpers live in tests/conftest.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIM = ROOT / "sim"
BELOW = {"core": set(), "statistics": set()}
BELOW["inputs"] = {"core", "statistics"}
BELOW["figures"] = BELOW["inputs"] | {"inputs"}
BELOW["running"] = BELOW["figures"] | {"figures"}
BELOW["calibration"] = BELOW["running"] | {"running"}
BELOW["exploration"] = BELOW["running"] | {"running"}
TOP = {"cli", "app", "__init__"}  # the commands, the browser page and the package's own entry may import anything


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, lazily inside functions included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def layer(parts: tuple[str, ...]) -> str:
    """The layer of a module given its dotted path below sim (a subpackage, or a top-level module's name)."""
    return parts[0].removesuffix(".py")


def test_every_module_of_sim_belongs_to_a_known_layer():
    layers = {layer(path.relative_to(SIM).parts) for path in SIM.rglob("*.py")}
    assert layers == set(BELOW) | TOP


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in sorted(SIM.rglob("*.py")):
        own = layer(path.relative_to(SIM).parts)
        if own in TOP:
            continue
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] != "sim" or len(parts) < 2:
                continue
            target = parts[1]
            if target != own and target not in BELOW[own] and target in BELOW.keys() | TOP:
                upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not upward, "\n".join(upward)


def test_no_test_module_imports_another():
    tests = {path.stem for path in Path(__file__).parent.glob("test_*.py")}
    crossing = [f"{path.name} imports {name}" for path in sorted(Path(__file__).parent.glob("*.py"))
                for name in imported_modules(path) if set(name.split(".")) & tests]
    assert not crossing, "\n".join(crossing)
