"""Bringing an existing OpenStack Placement over to claimant: read its
database into any claimant store (``placement``), then compare what both
services answer to the GETs Nova makes (``verify``).
docs/migrating-from-placement.md."""
