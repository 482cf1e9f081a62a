"""``claimant import placement --verify``: its comparison rules, and the
whole command between two real services. Here both sides are claimant
servers holding the same import (no Placement needed); the comparison with a
real Placement 16 is test_live_placement.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from claimant.cli.main import main
from claimant.importer.placement import import_placement
from claimant.importer.source import PlacementSource
from claimant.importer.verify import diff, normalize, verify
from claimant.store import open_store

from .conftest import serving

pytest.importorskip("sqlalchemy", reason="the importer needs SQLAlchemy (extra placement-import)")

RP = "/resource_providers"


@pytest.mark.parametrize(
    ("a", "b", "wheres"),
    [
        pytest.param(
            {"resource_providers": [{"uuid": "u1", "generation": 1}, {"uuid": "u2"}]},
            {"resource_providers": [{"uuid": "u2"}, {"uuid": "u1", "generation": 1}]},
            [],
            id="provider-order-means-nothing",
        ),
        pytest.param({"traits": ["B", "A"]}, {"traits": ["A", "B"]}, [], id="trait-order"),
        pytest.param({"allocation_ratio": 1}, {"allocation_ratio": 1.0}, [], id="int-vs-float"),
        pytest.param(
            {"resource_providers": [{"uuid": "u1", "generation": 1}]},
            {"resource_providers": [{"uuid": "u1", "generation": 2}]},
            ["/resource_providers/u1/generation"],
            id="generation",
        ),
        pytest.param(
            {"traits": ["A", "B"]},
            {"traits": ["A"]},
            ["/traits (2 vs 1 items)"],
            id="missing-trait",
        ),
        pytest.param({"a": 1}, {"b": 1}, ["/a", "/b"], id="absent-keys"),
        pytest.param(
            {"allocation_requests": [{"allocations": {"x": 1}}, {"allocations": {"y": 1}}]},
            {"allocation_requests": [{"allocations": {"y": 1}}, {"allocations": {"x": 1}}]},
            [],
            id="candidate-order",
        ),
        pytest.param({"used": None}, {"used": 0}, ["/used"], id="null-is-not-zero"),
    ],
)
def test_comparison_rules(a: Any, b: Any, wheres: list[str]) -> None:
    found = diff(RP, normalize(RP, a), normalize(RP, b))
    assert [d.where for d in found] == wheres


def _imported(tmp_path: Path, name: str, placement_url: str) -> Any:
    st = open_store("sqlite:///" + str(tmp_path / f"{name}.db"))
    st.migrate()
    source = PlacementSource(placement_url)
    import_placement(source, st)
    source.close()
    return st


def test_verify_between_two_services(tmp_path: Path, placement_url: str) -> None:
    left = _imported(tmp_path, "left", placement_url)
    right = _imported(tmp_path, "right", placement_url)
    with serving(left) as a, serving(right) as b:
        same = verify(a, b, sample=50)
        assert same.differences == []
        assert same.providers == 25
        assert same.consumers > 20
        assert same.candidate_queries > 10
        assert same.requests > 200

        host = right.list_providers()[1]
        right.set_traits(host.uuid, host.generation, ["CUSTOM_RACK_A"])
        runner = CliRunner()
        args = ["import", "placement", "--verify", "--placement-url", a, "--url", b]
        table = runner.invoke(main, args)
        assert table.exit_code == 1, table.output
        assert "difference(s)" in table.output
        assert max(len(line) for line in table.output.splitlines()) <= 80
        as_json = runner.invoke(main, [*args, "--json"])
        assert as_json.exit_code == 1
        found = json.loads(as_json.output)["differences"]
        assert any(
            d["get"] == f"/resource_providers/{host.uuid}/traits"
            and "CUSTOM_RACK_A" in d["claimant"]
            for d in found
        )
        assert any(d["where"].endswith("/generation") for d in found)
    left.close()
    right.close()


def test_verify_says_when_a_service_is_not_there(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "import",
            "placement",
            "--verify",
            "--placement-url",
            "http://127.0.0.1:1",
            "--url",
            "http://127.0.0.1:1",
        ],
    )
    assert result.exit_code == 4
    assert "cannot reach Placement" in result.output
    assert "Traceback" not in result.output
