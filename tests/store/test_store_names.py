"""Resource classes, traits and resource types."""

from __future__ import annotations

import pytest

from claimant.model import (
    AlreadyExists,
    AttributeSpec,
    InUse,
    InvalidInput,
    NotFound,
    ResourceClass,
    ResourceType,
)
from claimant.store import Store

from .builders import inv, make_provider

# -- resource classes -------------------------------------------------------


def test_standard_resource_classes_are_listed(store: Store) -> None:
    classes = {rc.name: rc for rc in store.list_resource_classes()}
    for name in ("VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF"):
        assert classes[name].standard
    assert not classes["VCPU"].discrete
    assert classes["PCI_DEVICE"].discrete
    assert store.get_resource_class("VCPU").standard


def test_custom_resource_class_lifecycle(store: Store) -> None:
    created = store.create_resource_class(ResourceClass("CUSTOM_GOLD", discrete=True))
    assert created.name == "CUSTOM_GOLD"
    got = store.get_resource_class("CUSTOM_GOLD")
    assert (got.name, got.discrete, got.standard) == ("CUSTOM_GOLD", True, False)
    assert "CUSTOM_GOLD" in {rc.name for rc in store.list_resource_classes()}

    with pytest.raises(AlreadyExists):
        store.create_resource_class(ResourceClass("CUSTOM_GOLD"))

    store.delete_resource_class("CUSTOM_GOLD")
    with pytest.raises(NotFound):
        store.get_resource_class("CUSTOM_GOLD")
    assert "CUSTOM_GOLD" not in {rc.name for rc in store.list_resource_classes()}


@pytest.mark.parametrize("name", ["GOLD", "CUSTOM_lower", "CUSTOM_", "CUSTOM_A-B"])
def test_create_resource_class_rejects_bad_names(store: Store, name: str) -> None:
    with pytest.raises(InvalidInput):
        store.create_resource_class(ResourceClass(name))


def test_unknown_resource_class(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_resource_class("CUSTOM_NOPE")
    with pytest.raises(NotFound):
        store.delete_resource_class("CUSTOM_NOPE")


def test_delete_resource_class_in_use(store: Store) -> None:
    store.create_resource_class(ResourceClass("CUSTOM_FPGA_X", discrete=True))
    p = make_provider(store, inventories={"CUSTOM_FPGA_X": inv("CUSTOM_FPGA_X", 2)})
    with pytest.raises(InUse):
        store.delete_resource_class("CUSTOM_FPGA_X")
    store.set_inventories(p.uuid, p.generation, {})
    store.delete_resource_class("CUSTOM_FPGA_X")


def test_delete_standard_resource_class_is_invalid(store: Store) -> None:
    with pytest.raises(InvalidInput):
        store.delete_resource_class("VCPU")
    assert store.get_resource_class("VCPU").standard


# -- traits -----------------------------------------------------------------


def test_standard_traits_listed_sorted(store: Store) -> None:
    traits = store.list_traits()
    assert traits == sorted(traits)
    assert {"HW_CPU_X86_AVX2", "COMPUTE_STATUS_DISABLED"} <= set(traits)


def test_custom_trait_lifecycle(store: Store) -> None:
    assert store.create_trait("CUSTOM_FAST") is True
    assert store.create_trait("CUSTOM_FAST") is False
    assert "CUSTOM_FAST" in store.list_traits()
    store.delete_trait("CUSTOM_FAST")
    assert "CUSTOM_FAST" not in store.list_traits()
    with pytest.raises(NotFound):
        store.delete_trait("CUSTOM_FAST")


@pytest.mark.parametrize("name", ["FAST", "CUSTOM_fast", "CUSTOM_"])
def test_create_trait_rejects_bad_names(store: Store, name: str) -> None:
    with pytest.raises(InvalidInput):
        store.create_trait(name)


def test_delete_trait_in_use_and_traits_in_use(store: Store) -> None:
    assert store.traits_in_use() == set()
    p = make_provider(store, traits=("CUSTOM_SSD", "HW_CPU_X86_AVX2"))
    store.create_trait("CUSTOM_IDLE")
    assert store.traits_in_use() == {"CUSTOM_SSD", "HW_CPU_X86_AVX2"}
    with pytest.raises(InUse):
        store.delete_trait("CUSTOM_SSD")
    store.delete_trait("CUSTOM_IDLE")

    store.set_traits(p.uuid, p.generation, [])
    assert store.traits_in_use() == set()
    store.delete_trait("CUSTOM_SSD")


def test_delete_standard_trait_is_invalid(store: Store) -> None:
    with pytest.raises(InvalidInput):
        store.delete_trait("HW_CPU_X86_AVX2")
    assert "HW_CPU_X86_AVX2" in store.list_traits()


# -- resource types ---------------------------------------------------------


def test_builtin_resource_types(store: Store) -> None:
    names = {t.name for t in store.list_resource_types()}
    assert {"compute", "baremetal", "block_storage", "network"} <= names
    compute = store.get_resource_type("compute")
    assert compute.builtin
    assert compute.attributes["cpu_arch"].kind == "string"
    assert store.get_resource_type("baremetal").attributes["ram_gb"].kind == "integer"


GPU_BOX = ResourceType(
    "gpu_box",
    attributes=(
        AttributeSpec("gpu_model", "string", required=True),
        AttributeSpec("gpus", "integer"),
        AttributeSpec("tflops", "number"),
        AttributeSpec("nvlink", "boolean"),
    ),
    description="a box of GPUs",
)


def test_custom_resource_type_lifecycle(store: Store) -> None:
    store.create_resource_type(GPU_BOX)
    got = store.get_resource_type("gpu_box")
    assert got == GPU_BOX
    assert not got.builtin
    assert got.attributes["gpu_model"].required
    assert got.description == "a box of GPUs"
    assert "gpu_box" in {t.name for t in store.list_resource_types()}

    with pytest.raises(AlreadyExists):
        store.create_resource_type(GPU_BOX)

    store.delete_resource_type("gpu_box")
    with pytest.raises(NotFound):
        store.get_resource_type("gpu_box")
    with pytest.raises(NotFound):
        store.delete_resource_type("gpu_box")


def test_create_resource_type_rejects_bad_specs(store: Store) -> None:
    with pytest.raises(InvalidInput):
        store.create_resource_type(ResourceType("Bad Name"))
    with pytest.raises(InvalidInput):
        store.create_resource_type(ResourceType("ok_name", (AttributeSpec("x", "color"),)))
    with pytest.raises(NotFound):
        store.get_resource_type("ok_name")


def test_delete_resource_type_in_use(store: Store) -> None:
    store.create_resource_type(GPU_BOX)
    p = make_provider(store, type="gpu_box", attributes={"gpu_model": "a100"})
    with pytest.raises(InUse):
        store.delete_resource_type("gpu_box")
    store.delete_provider(p.uuid)
    store.delete_resource_type("gpu_box")


def test_delete_builtin_resource_type_is_invalid(store: Store) -> None:
    with pytest.raises(InvalidInput):
        store.delete_resource_type("compute")
    assert store.get_resource_type("compute").builtin
