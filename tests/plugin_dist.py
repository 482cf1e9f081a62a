"""Register plugins for a test the way a package does: a distribution whose
``entry_points.txt`` names them, found by ``importlib.metadata`` on sys.path.
Nothing is installed: the dist-info directory lives in a temporary directory
that is on sys.path only while it is in use."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from claimant import plugins

_serial = itertools.count()


def write_dist(root: Path, groups: Mapping[str, Mapping[str, str]], name: str) -> Path:
    """A ``<name>-0.0.0.dist-info`` under ``root`` declaring ``groups``
    (group -> entry point name -> ``module:attr``)."""
    dist = root / f"{name.replace('-', '_')}-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.0\n")
    lines: list[str] = []
    for group, points in groups.items():
        lines.append(f"[{group}]")
        lines += [f"{ep} = {target}" for ep, target in points.items()]
        lines.append("")
    (dist / "entry_points.txt").write_text("\n".join(lines))
    return root


def add_to_path(root: Path) -> None:
    sys.path.append(str(root))
    plugins.refresh()


@contextmanager
def plugin_dist(root: Path, groups: Mapping[str, Mapping[str, str]]) -> Iterator[Path]:
    """``groups`` registered while the block runs."""
    # Distributions are unique by name: one name per use, so two never shadow.
    write_dist(root, groups, f"claimant-test-plugins-{next(_serial)}")
    add_to_path(root)
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        plugins.refresh()
