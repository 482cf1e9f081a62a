"""HTTP APIs: the native API under /v1 and (in ``placement``) the
Placement-compatible one. ``create_app`` builds both."""

from claimant.api.app import create_app
from claimant.api.auth import AuthConfig

__all__ = ["AuthConfig", "create_app"]
