"""The package's import arrows point the way docs/architecture.md draws them.

Every `import` in every module is read from its syntax tree (function-local imports included), so
a lazy import cannot hide an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "wmtp_lightning"

# package -> packages (of wmtp_lightning) and third-party roots it must never import
FORBIDDEN = {
    "models": {
        "weighting",
        "data",
        "experiments",
        "evaluation",
        "ops",
        "cli",
        "compare",
        "tracking",
        "lightning",
        "pytorch_lightning",
    },
    "weighting": {
        "data",
        "experiments",
        "evaluation",
        "ops",
        "cli",
        "compare",
        "tracking",
        "lightning",
        "pytorch_lightning",
    },
    "data": {"experiments", "evaluation", "ops", "cli", "compare"},
    "evaluation": {"experiments", "ops", "cli", "compare"},
    "experiments": {"evaluation", "ops", "cli", "compare"},
    "ops": {"experiments", "evaluation", "data", "cli", "compare"},
}


def imports_of(path: Path) -> set[str]:
    """Top two name parts of every absolute import in `path` ("wmtp_lightning.data" -> "data", "torch" -> "torch")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [node.module]
        else:
            continue
        for m in mods:
            parts = m.split(".")
            names.add(parts[1] if parts[0] == "wmtp_lightning" and len(parts) > 1 else parts[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_directions(package):
    bad = {
        str(path.relative_to(PKG.parent)): sorted(imports_of(path) & FORBIDDEN[package])
        for path in sorted((PKG / package).rglob("*.py"))
    }
    assert not {k: v for k, v in bad.items() if v}, f"{package} imports what docs/architecture.md forbids"


def test_the_check_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from wmtp_lightning.experiments.base import MTPModule\n    import lightning.pytorch\n")
    assert {"experiments", "lightning"} <= imports_of(f)
