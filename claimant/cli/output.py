"""How client commands print: tables that fit the terminal (``COLUMNS``),
``-o wide`` for full uuids, ``--json`` / ``-o json`` / ``-o yaml`` for
scripts; human times and short uuids in tables."""

from __future__ import annotations

import enum
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import click

from claimant.cluster import yamlout

SHORT_UUID = 8
# -o wide prints full uuids on one line whatever the terminal.
WIDE_COLUMNS = 300


# The columns that may wrap when a table is too wide; any other keeps its
# values whole (a uuid must stay copyable, a number readable).
WRAPPING = frozenset(
    {
        "NAME",
        "PROVIDER",
        "MESSAGE",
        "ASKS FOR",
        "AMOUNTS",
        "TRAITS",
        "ATTRIBUTES",
        "DESCRIPTION",
        "OTHER",
    }
)
# A wrapping column that keeps this many characters before the others wrap: a
# provider name whole up to 20, rather than its claim's amounts split.
MIN_WIDTH = {"PROVIDER": 20}


class Mode(enum.StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


@dataclass(frozen=True, slots=True)
class Out:
    mode: Mode

    @property
    def machine(self) -> bool:
        return self.mode in (Mode.JSON, Mode.YAML)

    @property
    def wide(self) -> bool:
        return self.mode is Mode.WIDE

    def emit(self, data: Any, render: Callable[[Any], None]) -> None:
        """``data`` as JSON or YAML, or through ``render`` as tables."""
        if self.mode is Mode.JSON:
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        elif self.mode is Mode.YAML:
            click.echo(yamlout.dump(data if isinstance(data, dict) else {"items": data}), nl=False)
        else:
            render(data)

    def uuid(self, value: str | None) -> str:
        if not value:
            return ""
        return value if self.wide else value[:SHORT_UUID]

    def table(
        self,
        columns: list[str],
        rows: Iterable[list[Any]],
        *,
        title: str | None = None,
        right: Iterable[str] = (),
    ) -> None:
        """A kubectl-style table: no borders, a bold header; only free-text
        columns (WRAPPING) wrap, never a uuid or a number."""
        from rich.table import Table
        from rich.text import Text

        right_cols = set(right)
        rows = [["" if v is None else str(v) for v in row] for row in rows]
        longest = {c: max((len(r[i]) for r in rows), default=0) for i, c in enumerate(columns)}
        t = Table(
            title=title,
            title_justify="left",
            title_style="bold",
            box=None,
            pad_edge=False,
            padding=(0, 2, 0, 0),
            header_style="bold",
        )
        for c in columns:
            t.add_column(
                c,
                justify="right" if c in right_cols else "left",
                overflow="fold",
                no_wrap=c not in WRAPPING,
                min_width=min(MIN_WIDTH.get(c, 0), longest.get(c, 0)) or None,
            )
        for row in rows:
            # Text, not markup: a value such as "[a, b]" is data, not a style.
            t.add_row(*(Text(v) for v in row))
        self.console().print(t)

    def fields(self, title: str, pairs: Iterable[tuple[str, Any]]) -> None:
        """A describe block: ``key: value`` lines under a title."""
        from rich.padding import Padding
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for key, value in pairs:
            if value is None or value == "":
                continue
            grid.add_row(Text(key + ":"), Text(str(value)))
        console = self.console()
        console.print(f"[bold]{_escape(title)}[/bold]")
        console.print(Padding(grid, (0, 0, 0, 2)))

    def heading(self, text: str) -> None:
        self.console().print(f"\n[bold]{_escape(text)}[/bold]")

    def line(self, text: str) -> None:
        self.console().print(_escape(text), overflow="fold")

    def console(self) -> Any:
        from rich.console import Console

        # Rich reads COLUMNS itself (80 when stdout is not a terminal).
        return Console(
            file=sys.stdout,
            width=WIDE_COLUMNS if self.wide else None,
            highlight=False,
            emoji=False,
            color_system=None if not sys.stdout.isatty() else "auto",
        )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` and ``-o/--output``, passed on as ``out: Out``."""

    func = click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice([m.value for m in Mode]),
        default=None,
        help="table (default), wide (full uuids), json or yaml.",
    )(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON (= -o json).")(func)
    return func


def out_of(as_json: bool, output: str | None) -> Out:
    if as_json and output not in (None, "json"):
        raise click.UsageError("--json and -o/--output disagree: give one")
    return Out(Mode.JSON if as_json else Mode(output or "table"))


def ago(ts: float | None, now: float | None = None) -> str:
    """A time as an age: ``3s ago``, ``5m ago``, ``in 4m`` (future)."""
    if not ts:
        return ""
    delta = (now if now is not None else time.time()) - ts
    text = span(abs(delta))
    return f"{text} ago" if delta >= 0 else f"in {text}"


def span(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def amounts(values: dict[str, Any], sep: str = ", ") -> str:
    return sep.join(f"{rc}={n}" for rc, n in values.items())


def number(n: int, exact: bool = False) -> str:
    """An amount short enough for a column: 16384 -> 16k, 2500000 -> 2.5M."""
    if exact or abs(n) < 10_000:
        return str(n)
    if abs(n) < 1_000_000:
        return f"{n / 1000:.0f}k"
    if abs(n) < 10_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n / 1_000_000:.0f}M"
