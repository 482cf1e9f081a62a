from __future__ import annotations

from typing import Any

from pydantic import StrictBool

from claimant.api.schemas.common import Body, CustomName
from claimant.model import ResourceClass


class ResourceClassCreate(Body):
    name: CustomName
    discrete: StrictBool = False


def resource_class_to_dict(rc: ResourceClass) -> dict[str, Any]:
    return {"name": rc.name, "discrete": rc.discrete, "standard": rc.standard}
