"""The ``claimant`` command line."""
