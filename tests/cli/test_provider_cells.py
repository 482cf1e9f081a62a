"""``provider list`` with providers in several cells (issue 12): a CELL
column, still within 80 columns; none when there is one cell."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from claimant.cli.output import Mode, Out
from claimant.cli.providers import render_providers


def _provider(name: str, cell: str, i: int) -> dict[str, Any]:
    usage = {"used": 2 * i, "free": 64 - 2 * i, "capacity": 64}
    classes = ("VCPU", "MEMORY_MB", "DISK_GB", "VGPU")
    return {
        "name": name,
        "uuid": f"{i:08d}-0000-4000-8000-000000000000",
        "cell": cell,
        "health": "up",
        "enabled": True,
        "inventories": {rc: {} for rc in classes},
        "usages": dict.fromkeys(classes, usage),
    }


def _render(providers: list[dict[str, Any]]) -> str:
    @click.command()
    def show() -> None:
        render_providers(Out(Mode.TABLE), providers)

    result = CliRunner().invoke(show, [], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("cells", "column"),
    [(("dc1", "dc2", "dc1"), True), (("dc1", "dc1", "dc1"), False)],
    ids=["two-cells", "one-cell"],
)
def test_cell_column_only_with_several_cells(cells: tuple[str, ...], column: bool) -> None:
    text = _render([_provider(f"compute-node-{i:03d}.rack-a", c, i) for i, c in enumerate(cells)])
    header = next(line for line in text.splitlines() if line.startswith("NAME"))
    assert ("CELL" in header) is column
    assert ("dc2" in text) is column
    too_long = [line for line in text.splitlines() if len(line.rstrip()) > 80]
    assert not too_long, "\n".join(too_long)
