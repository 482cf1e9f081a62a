"""The layers of docs/architecture.md, checked: each part of ``claimant/``
imports only the parts its arrow names, and only the store speaks to a
database driver. A new part, or a new arrow, is a change to that page too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "claimant"
DRIVERS = {"cassandra", "sqlite3"}

# Mirrors the diagram in docs/architecture.md ("Layers").
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "cluster": set(),
    "logs": set(),
    "http_client": set(),
    "plugins": {"model"},
    "store": {"model", "plugins"},
    "scheduler": {"model", "plugins", "store"},
    "api": {"model", "scheduler", "store", "logs"},
    "importer": {"model", "store"},
    # The agents' and the conductor's HTTP servers use the API's auth and errors.
    "agent": {"model", "store", "plugins", "api", "http_client"},
    "conductor": {"model", "scheduler", "store", "api", "agent", "logs"},
    "sim": {"model", "scheduler", "store", "agent", "conductor"},
    "torture": {"model", "store", "cluster", "agent"},
    "cli": {
        "model", "store", "scheduler", "plugins", "api", "agent", "conductor", "sim",
        "cluster", "torture", "importer", "http_client", "logs",
    },
}  # fmt: skip


def _part(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """Top-level names of what ``path`` imports (absolute imports; the
    package's own relative imports stay inside its part)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "claimant":  # from claimant import logs
                out.update(f"claimant.{a.name}" for a in node.names)
            else:
                out.add(node.module)
    return out


def _files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def test_every_part_of_the_package_has_a_place_in_the_diagram() -> None:
    assert {_part(p) for p in _files()} == set(ALLOWED)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    part = _part(path)
    wrong = []
    for name in _imports(path):
        root, _, rest = name.partition(".")
        if root == "claimant" and rest != "__version__":
            target = rest.split(".")[0]
            if target != part and target not in ALLOWED[part]:
                wrong.append(name)
        elif root in DRIVERS and part != "store":
            wrong.append(name)
    assert not wrong, f"{part} may not import {sorted(wrong)} (docs/architecture.md, Layers)"
