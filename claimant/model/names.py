"""Names of resource classes and traits: standard ones come from the
``os-resource-classes`` and ``os-traits`` packages, operators add ``CUSTOM_*``."""

from __future__ import annotations

import re

import os_resource_classes
import os_traits

from claimant.model.errors import InvalidInput

CUSTOM_PREFIX = "CUSTOM_"
_CUSTOM_RE = re.compile(r"^CUSTOM_[A-Z0-9_]+$")
MAX_NAME = 255

STANDARD_RESOURCE_CLASSES: tuple[str, ...] = tuple(os_resource_classes.STANDARDS)
STANDARD_TRAITS: frozenset[str] = frozenset(os_traits.get_traits())

# Whole units only: one GPU, one VF, one bare-metal machine. The rest are
# pools you take amounts of. CUSTOM_* classes say which they are when created;
# a CUSTOM_BAREMETAL_* name is discrete by convention (Ironic's resource classes).
DISCRETE_STANDARD_CLASSES: frozenset[str] = frozenset(
    {
        "PCI_DEVICE",
        "SRIOV_NET_VF",
        "NUMA_SOCKET",
        "NUMA_CORE",
        "NUMA_THREAD",
        "VGPU",
        "VGPU_DISPLAY_HEAD",
        "PCPU",
        "MEM_ENCRYPTION_CONTEXT",
        "FPGA",
        "PGPU",
    }
)


def is_custom(name: str) -> bool:
    return name.startswith(CUSTOM_PREFIX)


def validate_custom_name(name: str, what: str = "resource class") -> str:
    if not isinstance(name, str) or len(name) > MAX_NAME or not _CUSTOM_RE.match(name):
        raise InvalidInput(
            f"{what} name {name!r} is invalid: custom names match CUSTOM_[A-Z0-9_]+ "
            f"and are at most {MAX_NAME} characters",
            field="name",
        )
    return name


def is_standard_resource_class(name: str) -> bool:
    return name in STANDARD_RESOURCE_CLASSES


def is_standard_trait(name: str) -> bool:
    return name in STANDARD_TRAITS


def default_discrete(name: str) -> bool:
    return name in DISCRETE_STANDARD_CLASSES or name.startswith("CUSTOM_BAREMETAL")
