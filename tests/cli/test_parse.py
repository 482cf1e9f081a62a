"""Command-line values (issue 11): one resources syntax, attribute
constraints parsed or refused, never sent on to silently match nothing."""

from __future__ import annotations

from typing import Any

import click
import pytest

from claimant.cli import parse


@pytest.mark.parametrize(
    ("case", "values", "expected"),
    [
        ("CLASS=N", ["VCPU=2,MEMORY_MB=2048"], {"VCPU": 2, "MEMORY_MB": 2048}),
        ("Placement's CLASS:N", ["VCPU:2,MEMORY_MB:512"], {"VCPU": 2, "MEMORY_MB": 512}),
        ("mixed and repeated", ["VCPU=2", "DISK_GB:10"], {"VCPU": 2, "DISK_GB": 10}),
        ("spaces", [" VCPU = 2 , MEMORY_MB:1 "], {"VCPU": 2, "MEMORY_MB": 1}),
    ],
)
def test_resources(case: str, values: list[str], expected: dict[str, int]) -> None:
    assert parse.resources(values) == expected


@pytest.mark.parametrize("bad", ["VCPU", "VCPU=two", "=2", "VCPU=2=3", "VCPU 2"])
def test_bad_resources_are_refused(bad: str) -> None:
    with pytest.raises(click.BadParameter, match="CLASS=N"):
        parse.resources([bad])


@pytest.mark.parametrize(
    ("case", "text", "expected"),
    [
        ("equal", "cpu_arch==x86_64", {"name": "cpu_arch", "op": "==", "value": "x86_64"}),
        ("single =", "cpu_arch=x86_64", {"name": "cpu_arch", "op": "==", "value": "x86_64"}),
        ("spaced", "ram_gb >= 256", {"name": "ram_gb", "op": ">=", "value": 256}),
        ("not equal", "cpu_arch!=aarch64", {"name": "cpu_arch", "op": "!=", "value": "aarch64"}),
        ("less", "nic_gbps<100", {"name": "nic_gbps", "op": "<", "value": 100}),
        ("boolean", "has_gpu==true", {"name": "has_gpu", "op": "==", "value": True}),
        ("quoted", "model=='a b'", {"name": "model", "op": "==", "value": "a b"}),
        # issue 11: this used to become the values "[a" and "b]" and find nothing
        (
            "in brackets",
            "cpu_arch in [a, b]",
            {"name": "cpu_arch", "op": "in", "value": ["a", "b"]},
        ),
        ("in parens", "cpu_arch in (a,b)", {"name": "cpu_arch", "op": "in", "value": ["a", "b"]}),
        ("in bare", "cpu_arch in a, b", {"name": "cpu_arch", "op": "in", "value": ["a", "b"]}),
        ("in numbers", "ram_gb in [64, 128]", {"name": "ram_gb", "op": "in", "value": [64, 128]}),
    ],
)
def test_constraints(case: str, text: str, expected: dict[str, Any]) -> None:
    assert parse.constraint(text) == expected


@pytest.mark.parametrize(
    "bad",
    ["cpu_arch", "cpu_arch in []", "cpu_arch in [a, b", "cpu_arch==[a, b]", "==x", "cpu_arch~a"],
)
def test_bad_constraints_are_refused(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse.constraint(bad)


def test_group_spec() -> None:
    g = parse.group(
        "name=gpu; VGPU=1,VCPU:2; required=CUSTOM_A,CUSTOM_B; forbidden=CUSTOM_C; "
        "member_of=U1,U2; in_tree=cn1; type=compute; span=tree; cpu_arch in [a, b]"
    )
    assert g == {
        "name": "gpu",
        "resources": {"VGPU": 1, "VCPU": 2},
        "required_traits": ["CUSTOM_A", "CUSTOM_B"],
        "forbidden_traits": ["CUSTOM_C"],
        "member_of": [["U1", "U2"]],
        "in_tree": "cn1",
        "provider_type": "compute",
        "span": "tree",
        "attributes": [{"name": "cpu_arch", "op": "in", "value": ["a", "b"]}],
    }


@pytest.mark.parametrize("bad", ["name=x", "VCPU=1; nonsense", "VCPU=1; span=everywhere"])
def test_bad_group_specs_are_refused(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse.group(bad)
