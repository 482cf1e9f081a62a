from __future__ import annotations

from claimant.api.schemas.common import Body, Generation, TraitName


class ProviderTraitsPut(Body):
    generation: Generation
    traits: list[TraitName]
