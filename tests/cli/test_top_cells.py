"""``claimant top`` per cell (issue 12): per-cell tables when the store has
several cells, within 80 columns; unchanged with one; ``--cell`` filters;
``request create --cell``."""

from __future__ import annotations

import json
from typing import Any

import click
import pytest
from click.testing import CliRunner

from claimant.cli.main import main
from claimant.cli.output import Mode, Out
from claimant.cli.top import render_top
from claimant.model import LOCAL_CELL
from claimant.store import Store


def _usage(capacity: int, used: int) -> dict[str, Any]:
    return {
        "capacity": capacity,
        "used": used,
        "free": capacity - used,
        "used_percent": round(100 * used / capacity, 1),
        "schedulable_free": capacity - used,
        "providers": 20,
    }


def _capacity(cells: tuple[str, ...]) -> dict[str, Any]:
    """What GET /v1/capacity answers for a store of these cells, 20 providers
    each (one down in the last), with 1 TiB hosts."""
    classes = {
        "VCPU": _usage(20 * 256, 1234),
        "MEMORY_MB": _usage(20 * 1_048_576, 315904),
        "CUSTOM_BAREMETAL_SILVER": _usage(20, 3),
    }
    health = {"up": 19, "stale": 0, "down": 1, "no_agent": 0}
    per_cell = {
        c: {
            "providers": {"total": 20, "enabled": 20, "disabled": 0, "health": health},
            "resource_classes": classes,
        }
        for c in cells
    }
    n = 20 * len(cells)
    return {
        "providers": {"total": n, "enabled": n, "disabled": 0, "health": health},
        "heartbeat_timeout": 60,
        "resource_classes": classes,
        "aggregates": [],
        "cell": None,
        "cells": per_cell,
    }


def _render(cap: dict[str, Any]) -> str:
    @click.command()
    def show() -> None:
        render_top(Out(Mode.TABLE), cap)

    result = CliRunner().invoke(show, [], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("cells", "per_cell"),
    [(("dc1", "dc2"), True), (("dc1",), False)],
    ids=["two-cells", "one-cell"],
)
def test_per_cell_tables_only_with_several_cells(cells: tuple[str, ...], per_cell: bool) -> None:
    text = _render(_capacity(cells))
    assert ("per cell" in text) is per_cell
    assert ("dc2" in text) is per_cell
    too_long = [line for line in text.splitlines() if len(line.rstrip()) > 80]
    assert not too_long, "\n".join(too_long)
    if per_cell:
        rows = [line.split() for line in text.splitlines()]
        assert ["dc2", "20", "20", "19", "0", "1", "0"] in rows
        assert any(r[:2] == ["dc1", "CUSTOM_BAREMETAL_SILVER"] for r in rows)


def test_top_cell_option(server: str, store: Store) -> None:
    made = CliRunner().invoke(
        main, ["provider", "create", "cn-1", "--inventory", "VCPU=8"], env={"COLUMNS": "80"}
    )
    assert made.exit_code == 0, made.output
    one = CliRunner().invoke(main, ["top", "--cell", LOCAL_CELL], env={"COLUMNS": "80"})
    assert one.exit_code == 0, one.output
    assert f"cell:      {LOCAL_CELL}" in one.output
    assert "providers: 1 (1 enabled" in one.output
    assert "per cell" not in one.output
    bad = CliRunner().invoke(main, ["top", "--cell", "dc9"])
    assert bad.exit_code != 0
    assert "unknown_cell" in bad.output or "unknown cell" in bad.output


def test_request_create_cell(server: str, store: Store) -> None:
    # Before: no such option --cell (the API took `cell`, the CLI could not send it).
    made = CliRunner().invoke(main, ["provider", "create", "cn-1", "--inventory", "VCPU=8"])
    assert made.exit_code == 0, made.output
    placed = CliRunner().invoke(
        main, ["request", "create", "--resources", "VCPU=1", "--cell", LOCAL_CELL, "--json"]
    )
    assert placed.exit_code == 0, placed.output
    assert json.loads(placed.stdout)["cell"] == LOCAL_CELL
    bad = CliRunner().invoke(main, ["request", "create", "--resources", "VCPU=1", "--cell", "dc9"])
    assert bad.exit_code != 0
    assert "unknown_cell" in bad.output or "unknown cell" in bad.output
